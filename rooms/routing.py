from django.urls import path

from rooms.consumers import RoomConsumer

websocket_urlpatterns = [
    path("ws/teams/<slug:slug>/", RoomConsumer.as_asgi()),
]
