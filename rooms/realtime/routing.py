from django.urls import path, re_path

from rooms import protocol
from rooms.realtime.consumers import RoomConsumer


async def refuse_unknown_path(scope, receive, send) -> None:
    """Any other socket path: accepted and closed with 4404, as the table refuses an unknown
    team, rather than an error in the server's log and an HTTP 500 to the client."""
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            # Accept first so the browser receives our application close code, not a bare 403.
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": protocol.CLOSE_NOT_FOUND})
        elif message["type"] == "websocket.disconnect":
            return


websocket_urlpatterns = [
    path("ws/teams/<slug:slug>/", RoomConsumer.as_asgi()),
    # Channels' URLRouter takes ASGI applications; django-stubs knows only views.
    re_path(r"", refuse_unknown_path),  # type: ignore[arg-type]
]
