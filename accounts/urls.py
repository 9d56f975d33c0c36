from django.urls import path

from accounts import views

urlpatterns = [
    path("teams/", views.dashboard, name="dashboard"),
    path("teams/new/", views.team_create, name="team_create"),
    path("teams/<slug:slug>/members/role/", views.member_role, name="member_role"),
    path("teams/<slug:slug>/members/remove/", views.member_remove, name="member_remove"),
    path("teams/<slug:slug>/invites/", views.invite_create, name="invite_create"),
    path("teams/<slug:slug>/invites/<int:pk>/revoke/", views.invite_revoke, name="invite_revoke"),
    path("invite/<str:token>/", views.invite_accept, name="invite_accept"),
    path("teams/<slug:slug>/guests/", views.guest_settings, name="guest_settings"),
    path("teams/<slug:slug>/guests/rotate/", views.guest_link_rotate, name="guest_link_rotate"),
    path("guest/<str:token>/", views.guest_join, name="guest_join"),
    path("accounts/claim/", views.guest_claim, name="guest_claim"),
]
