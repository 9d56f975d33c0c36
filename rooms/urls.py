from django.urls import path

from rooms import views

urlpatterns = [
    path("teams/<slug:slug>/table/", views.table, name="table"),
]
