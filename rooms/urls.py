from django.urls import path, re_path

from rooms import views

urlpatterns = [
    path("teams/<slug:slug>/table/", views.table, name="table"),
    path("teams/<slug:slug>/stories/<uuid:pk>/", views.story_detail, name="story_detail"),
    path("teams/<slug:slug>/history/", views.team_history, name="team_history"),
    re_path(
        r"^teams/(?P<slug>[-a-zA-Z0-9_]+)/export/history\.(?P<kind>csv|json)$",
        views.history_export,
        name="history_export",
    ),
    path("teams/<slug:slug>/decks/", views.team_decks, name="team_decks"),
    path("teams/<slug:slug>/decks/default/", views.team_deck_default, name="team_deck_default"),
    path("teams/<slug:slug>/decks/<int:pk>/", views.team_deck_edit, name="team_deck_edit"),
    path(
        "teams/<slug:slug>/decks/<int:pk>/delete/", views.team_deck_delete, name="team_deck_delete"
    ),
    path("teams/<slug:slug>/settings/", views.team_settings, name="team_settings"),
]
