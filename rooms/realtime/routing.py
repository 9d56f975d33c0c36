from django.urls import path

from rooms.realtime.consumers import RoomConsumer

websocket_urlpatterns = [
    path("ws/teams/<slug:slug>/", RoomConsumer.as_asgi()),
]
