from django.urls import path, re_path

from stories import views

urlpatterns = [
    path("teams/<slug:slug>/", views.team_detail, name="team_detail"),
    path("teams/<slug:slug>/stories/", views.story_create, name="story_create"),
    path("teams/<slug:slug>/stories/<uuid:pk>/edit/", views.story_edit, name="story_edit"),
    path("teams/<slug:slug>/stories/<uuid:pk>/delete/", views.story_delete, name="story_delete"),
    path("teams/<slug:slug>/stories/<uuid:pk>/move/", views.story_move, name="story_move"),
    path("teams/<slug:slug>/import/", views.story_import, name="story_import"),
    re_path(
        r"^teams/(?P<slug>[-a-zA-Z0-9_]+)/export/backlog\.(?P<kind>csv|json)$",
        views.backlog_export,
        name="backlog_export",
    ),
]
