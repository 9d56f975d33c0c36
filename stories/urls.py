from django.urls import path

from stories import views

urlpatterns = [
    path("teams/<slug:slug>/", views.team_detail, name="team_detail"),
    path("teams/<slug:slug>/stories/", views.story_create, name="story_create"),
    path("teams/<slug:slug>/stories/<uuid:pk>/edit/", views.story_edit, name="story_edit"),
    path("teams/<slug:slug>/stories/<uuid:pk>/delete/", views.story_delete, name="story_delete"),
    path("teams/<slug:slug>/stories/<uuid:pk>/move/", views.story_move, name="story_move"),
]
