"""The live table's socket: transport only. Authenticate, join, relay events, dispatch commands
(rooms.protocol.COMMANDS: fields, the role's action, the handler) to services. No rule lives
here; every state change goes through rooms.services, whose events rooms.realtime.dbpool.call
publishes before the command is acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, TypeVar

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import translation

from accounts import roles
from accounts.middleware import NotSignedIn, scope_membership, scope_user
from accounts.models import Membership
from accounts.selectors import NotAMember, membership_get
from pokerproject import logs, metrics, tracing
from pokerproject.errors import DomainError
from pokerproject.regions import availability
from pokerproject.regions.availability import ShardUnavailable
from rooms import presence, protocol, selectors, services
from rooms.broadcast import group_name
from rooms.errors import TeamMoved
from rooms.realtime import batching, dbpool, fanout, timers
from rooms.realtime.perloop import PerLoop

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A socket that ends while its team's shard cannot be reached cannot delete its presence row;
# its worker lives on, so the row would show the member online for good. Such leaves are kept
# here (channel name -> membership) and tried again every LEAVE_RETRY_SECONDS until they go through.
LEAVE_RETRY_SECONDS = 2.0
_unfinished_leaves: PerLoop[dict[str, Any]] = PerLoop(dict)
_leave_retries: PerLoop[list[asyncio.Task]] = PerLoop(list)


async def _leave(membership: Any, channel_name: str) -> bool:
    """Delete a socket's presence row; whether it went through (else it is retried)."""
    try:
        await batching.presence_leave(membership=membership, channel_name=channel_name)
    except Exception:
        unfinished = _unfinished_leaves.get()
        if channel_name not in unfinished:
            logger.warning("presence cleanup of %s failed; retrying", channel_name, exc_info=True)
        unfinished[channel_name] = membership
        retries = _leave_retries.get()
        if not retries or retries[0].done():
            retries[:] = [asyncio.get_running_loop().create_task(_retry_leaves())]
        return False
    _unfinished_leaves.get().pop(channel_name, None)
    return True


async def _retry_leaves() -> None:
    unfinished = _unfinished_leaves.get()
    while unfinished:
        await asyncio.sleep(LEAVE_RETRY_SECONDS)
        for channel_name, membership in list(unfinished.items()):
            await _leave(membership, channel_name)


class TokenBucket:
    """Per-socket inbound rate limit: ``rate`` frames a second with bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self.stamp = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class SendFailed(Exception):
    """The server could not take a frame for this socket (the client went away mid-reply, or
    the frame cannot be encoded): the socket is over."""


def language_of(scope: dict) -> str:
    """The language LocaleMiddleware would choose for the page that opened this socket."""
    headers = dict(scope.get("headers") or [])
    request = SimpleNamespace(
        COOKIES=scope.get("cookies") or {},
        META={"HTTP_ACCEPT_LANGUAGE": headers.get(b"accept-language", b"").decode("latin-1")},
    )
    return translation.get_language_from_request(request)  # type: ignore[arg-type]


class RoomConsumer(AsyncWebsocketConsumer):
    membership = None
    group: str | None = None
    session: str | None = None
    refused_in_a_row = 0  # frames refused by the rate limit since the last one it let through
    # This socket's key in its team's presence rows (see ``__call__``).
    channel_name = ""
    # Team events reach the socket from the worker's fan-out (rooms.realtime.fanout),
    # concurrently with this consumer's own handlers: those that arrive while it connects wait
    # in ``backlog`` until the snapshot is out; none is sent once the socket is going.
    ready = False
    gone = False
    # The language of this socket's error messages: the page's (language cookie, then
    # Accept-Language), as LocaleMiddleware chooses it for a request.
    language = settings.LANGUAGE_CODE

    async def __call__(self, scope, receive, send) -> None:
        """Serve one socket: its frames, one at a time.

        Channels would also give each socket a channel of its own on the layer and wait on it
        beside the socket (with the pub/sub layer a Redis subscription per socket, and a task and
        an ``asyncio.wait`` per frame). Nothing is ever sent to a socket's own channel here: team
        events reach the socket through the worker's fan-out (rooms.realtime.fanout). The name
        that would have been the channel's keys the socket's presence row.
        """
        self.scope = scope
        self.channel_layer = None
        self.channel_name = f"ws.{uuid.uuid4().hex}"
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        except SendFailed as exc:
            # Logged once here, not as a traceback: a client that drops mid-reply is ordinary.
            logger.info("socket %s ended: %r", self.channel_name, exc.__cause__ or exc)
            with contextlib.suppress(Exception):
                await self.base_send({"type": "websocket.close", "code": 1011})
        finally:
            # Whatever ended the socket (a disconnect, an error in a handler or a send, the
            # server cancelling it), it leaves the table: its seat in the fan-out and its
            # presence row. Shielded so a second cancellation cannot cut the cleanup short.
            if self.group is not None:
                await asyncio.shield(asyncio.ensure_future(self._leave_table()))

    async def connect(self) -> None:
        slug = self.scope["url_route"]["kwargs"]["slug"]
        # Every record of this socket's task from here on names it (pokerproject.logs).
        self.log = logs.own(connection_id=self.channel_name)
        self.frames = tracing.Frames(self.log)
        self.language = language_of(self.scope)
        try:
            self.membership = await dbpool.run(self._identify, slug)
        except NotSignedIn:
            await self._refuse(protocol.CLOSE_UNAUTHENTICATED, "not signed in")
            return
        except NotAMember:
            await self._refuse(protocol.CLOSE_FORBIDDEN, f"not a member of {slug}")
            return
        team = self.membership.team
        self.log.update(team_id=team.pk, shard=team.shard, region=team.region)
        # Which session this socket belongs to, for ``session_ended``.
        session = self.scope.get("session")
        self.session = services.session_tag(getattr(session, "session_key", None))
        presence.ensure_heartbeat()
        self.bucket = TokenBucket(
            settings.ROOM_RATE_LIMIT_PER_SECOND, settings.ROOM_RATE_LIMIT_BURST
        )
        self.group = group_name(self.membership.team_id)
        # Join before taking the snapshot so no event between the two is lost; events that the
        # snapshot already contains arrive with an older version and the client skips them.
        # Team events come through the worker's fan-out, not this socket's own channel.
        self.backlog: list[dict] = []
        await fanout.current().join(self.group, self)
        try:
            try:
                # With this worker's other joins and leaves of a few milliseconds (one
                # transaction and one presence event per table), the snapshot built from the
                # table as that transaction read it.
                snapshot = await self._on_shard(
                    batching.presence_join(
                        membership=self.membership, channel_name=self.channel_name
                    )
                )
            except ShardUnavailable as exc:
                # Say why there is no table (the page shows it) and let the client retry.
                self.gone = True
                await self.accept()
                with translation.override(self.language):
                    await self._send(protocol.error(None, exc.code, exc.message))
                await self.close(code=protocol.CLOSE_TRY_AGAIN)
                return
            await self.accept()
            metrics.connected()
            metrics.watch_event_loop()
            await self._send(snapshot)
            self._watch_timer(snapshot["data"]["round"])
            # In arrival order; nothing new jumps the queue, since ``ready`` is set only once
            # the backlog is empty, with no await in between.
            while self.backlog:
                await self._relay(self.backlog.pop(0))
            self.ready = True
            logger.info("socket connected")
        except BaseException:
            # ``__call__`` leaves the table (and deletes a presence row already written).
            self.gone = True
            raise

    def _identify(self, slug: str) -> Membership:
        """Who is on the socket and their membership of the team, in one trip to the database
        thread (accounts.middleware.scope_membership): NotSignedIn or NotAMember if none."""
        try:
            membership = scope_membership(self.scope, slug)
        except NotAMember:
            # The refusal names who was refused (already read: no query).
            self.log["user_id"] = scope_user(self.scope).pk
            raise
        self.log["user_id"] = membership.user_id
        return membership

    def _watch_timer(self, round_: dict | None) -> None:
        # This worker also watches the deadline of the round's timer (rooms.realtime.timers).
        if round_ is not None and round_.get("timer"):
            timers.watch(self.membership.team, round_["id"], round_["timer"])

    async def _refuse(self, code: int, reason: str) -> None:
        logger.info("socket refused: %s", reason, extra={"close_code": code})
        # Accept first so the browser receives our application close code rather than a bare 403.
        await self.accept()
        metrics.connected(refused_code=code)
        await self.close(code=code)

    async def _on_shard(self, work: Awaitable[T]) -> T:
        """Await ``work`` on the team's shard: refused at once while that shard is known to be
        unreachable, and a connection failure becomes ``ShardUnavailable`` (pokerproject.regions
        .availability), so a member hears ``shard_unavailable``, not ``internal``."""
        alias = self.membership.team.shard
        try:
            availability.check(alias)
        except ShardUnavailable:
            if asyncio.iscoroutine(work):
                work.close()  # never started
            raise
        token = dbpool.shard.set(alias)
        try:
            result = await work
        except Exception as exc:
            if availability.is_connection_failure(exc):
                availability.failed(alias)
                logger.warning("shard %s unreachable: %s", alias, exc)
                raise ShardUnavailable(alias=alias) from exc
            raise
        finally:
            dbpool.shard.reset(token)
        availability.succeeded(alias)
        return result

    async def _reload(self) -> None:
        """Read the membership and the team's home shard again, and sit down at the new table."""
        old_team = self.membership.team
        try:
            self.membership = await dbpool.run(
                membership_get, team_slug=old_team.slug, user=self.membership.user
            )
        except NotAMember:
            await self.close(code=protocol.CLOSE_FORBIDDEN)
            raise
        self.log["shard"] = self.membership.team.shard
        if self.membership.team.shard != old_team.shard:
            await dbpool.call(
                services.presence_join,
                team=self.membership.team,
                user_id=self.membership.user_id,
                channel_name=self.channel_name,
            )

    async def websocket_disconnect(self, message: dict) -> None:
        # Channels' own also queues close_old_connections on the database thread for every
        # socket that closes (a sixth of a mass disconnect's CPU, docs/performance.md round
        # 12); dbpool already closes stale connections around each unit of work.
        await self.disconnect(message.get("code", 1005))
        raise StopConsumer

    async def disconnect(self, code: int) -> None:
        logger.info("socket closed", extra={"close_code": code})
        metrics.disconnected(code)
        await self._leave_table()

    async def _leave_table(self) -> None:
        """Leave the fan-out and delete this socket's presence row, once."""
        self.gone = True
        group, self.group = self.group, None
        if group is None:
            return
        await fanout.current().leave(group, self)
        await _leave(self.membership, self.channel_name)

    async def dispatch(self, message: dict) -> None:
        # Every handler of this consumer reaches the database only through
        # rooms.realtime.dbpool (directly or via rooms.realtime.batching), which closes stale
        # connections on the thread that uses them, before and after each call: the extra hop
        # Channels makes here before connect, receive and disconnect would only queue behind
        # the database thread.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            await super().dispatch(message)  # raises Channels' own error
            return
        await handler(message)

    async def _send(self, frame: dict) -> None:
        await self._send_text(json.dumps(frame, ensure_ascii=False, separators=(",", ":")))

    async def _send_text(self, text: str) -> None:
        # Straight to the server's send: a worker sends thousands of frames a second, and
        # Channels' send adds two coroutine layers to each.
        try:
            await self.base_send({"type": "websocket.send", "text": text})
        except Exception as exc:
            self.gone = True
            raise SendFailed("sending a frame failed") from exc

    # --- inbound ---------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.membership is None or self.gone:
            return
        with self.frames, translation.override(self.language):
            await self._receive(text_data, bytes_data)

    async def _receive(self, text_data: str | None, bytes_data: bytes | None) -> None:
        request_id = None
        started, name = time.perf_counter(), "invalid"
        try:
            # Every frame counts against the limit, bad and oversized ones too; a frame over
            # the limit is still parsed (frames are small) so the error can echo its request_id.
            allowed = self.bucket.take()
            if allowed:
                self.refused_in_a_row = 0
            else:
                self.refused_in_a_row += 1
                if self.refused_in_a_row > settings.ROOM_RATE_LIMIT_CLOSE_AFTER:
                    logger.warning("closing a flooding socket of user %s", self.membership.user_id)
                    metrics.command(name, "rate_limited", started)
                    self.gone = True
                    await self.close(code=protocol.CLOSE_TOO_MANY_FRAMES)
                    return
            try:
                size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
                if size > settings.ROOM_MAX_FRAME_BYTES:
                    raise protocol.ProtocolError("frame_too_large")
                command = protocol.parse_command(text_data)
            except protocol.ProtocolError as exc:
                request_id = exc.request_id
                if not allowed:
                    raise protocol.ProtocolError("rate_limited", request_id=request_id) from None
                raise
            request_id, name = command.request_id, command.name
            self.frames.command(name, request_id)
            if not allowed:
                raise protocol.ProtocolError("rate_limited")
            spec = protocol.COMMANDS[command.name]
            # Refused here without a trip to the database; the service checks again for every
            # other door.
            if spec.action is not None:
                roles.require(self.membership.role, spec.action)
            handler = getattr(self, spec.handler)
            try:
                await self._on_shard(handler(command))
            except TeamMoved:
                # The team moved to another shard while this socket was open: follow it.
                await self._reload()
                await self._on_shard(handler(command))
            metrics.command(name, "ack", started)
        except protocol.ProtocolError as exc:
            logger.info("rejected frame from user %s: %s", self.membership.user_id, exc.code)
            tracing.refused(exc.code)
            metrics.command(name, exc.code, started)
            await self._send(protocol.error(request_id, exc.code, exc.detail))
        except DomainError as exc:
            logger.info("command refused for user %s: %s", self.membership.user_id, exc.code)
            tracing.refused(exc.code)
            metrics.command(name, exc.code, started)
            await self._send(protocol.error(request_id, exc.code, exc.message))
        except SendFailed:
            raise  # the socket is over (see ``__call__``)
        except Exception:
            logger.exception("command failed for user %s", self.membership.user_id)
            metrics.command(name, "internal", started)
            await self._send(protocol.error(request_id, "internal"))

    async def _call(self, service: Callable[..., services.TableUpdate], **kwargs: Any):
        return await dbpool.call(service, membership=self.membership, **kwargs)

    async def _ack(self, command: protocol.Command, update: services.TableUpdate, **data: Any):
        await self._send(protocol.ack(command.request_id, version=update.version, data=data))

    async def do_ping(self, command: protocol.Command) -> None:
        # The client's heartbeat. The ack carries the table's version as the database has it,
        # so a client that missed events (a Redis restart loses what was published meanwhile)
        # sees it is behind and asks for a snapshot without waiting for the next event.
        version = await batching.table_version(membership=self.membership)
        await self._send(protocol.ack(command.request_id, version=version, data={"pong": True}))

    async def do_get_snapshot(self, command: protocol.Command) -> None:
        snapshot = await dbpool.run(selectors.room_snapshot, membership=self.membership)
        metrics.resync()
        await self._send(snapshot)
        await self._send(protocol.ack(command.request_id, version=snapshot["version"]))

    async def do_start_round(self, command: protocol.Command) -> None:
        update = await self._call(
            services.round_start,
            story_id=command.data.get("story_id"),
            title=command.data.get("title", ""),
        )
        await self._ack(command, update, round_id=str(update.round.pk))

    async def do_next_story(self, command: protocol.Command) -> None:
        update = await self._call(services.round_start_next)
        await self._ack(command, update, round_id=str(update.round.pk))

    async def do_cast_vote(self, command: protocol.Command) -> None:
        update = await batching.vote_cast(membership=self.membership, value=command.data["value"])
        # The value goes back to its voter only, in the ack.
        await self._ack(command, update, value=update.value)

    async def do_withdraw_vote(self, command: protocol.Command) -> None:
        await self._ack(command, await self._call(services.vote_withdraw))

    async def do_reveal_cards(self, command: protocol.Command) -> None:
        await self._ack(command, await batching.round_reveal(membership=self.membership))

    async def do_restart_round(self, command: protocol.Command) -> None:
        update = await self._call(services.round_restart)
        await self._ack(command, update, round_id=str(update.round.pk))

    async def do_accept_estimate(self, command: protocol.Command) -> None:
        update = await self._call(
            services.estimate_accept,
            value=command.data["value"],
            next_story=command.data.get("next", False),
        )
        await self._ack(command, update, estimate=update.value)

    async def do_set_deck(self, command: protocol.Command) -> None:
        await self._ack(
            command, await self._call(services.room_set_deck, deck=command.data["deck"])
        )

    async def do_end_session(self, command: protocol.Command) -> None:
        await self._ack(command, await self._call(services.table_session_end))

    async def do_set_auto_reveal(self, command: protocol.Command) -> None:
        update = await self._call(services.room_set_auto_reveal, enabled=command.data["enabled"])
        await self._ack(command, update)

    async def do_set_voting(self, command: protocol.Command) -> None:
        update = await self._call(
            services.member_set_voting,
            voting=command.data["voting"],
            user_id=command.data.get("user_id"),
        )
        await self._ack(command, update)

    async def do_start_timer(self, command: protocol.Command) -> None:
        update = await self._call(
            services.round_timer_start,
            seconds=command.data.get("seconds"),
            auto_reveal=command.data.get("auto_reveal", False),
        )
        await self._ack(command, update)

    async def do_extend_timer(self, command: protocol.Command) -> None:
        update = await self._call(services.round_timer_extend, seconds=command.data.get("seconds"))
        await self._ack(command, update)

    async def do_stop_timer(self, command: protocol.Command) -> None:
        await self._ack(command, await self._call(services.round_timer_stop))

    async def do_remove_member(self, command: protocol.Command) -> None:
        # A change of the directory: the table hears it as members_changed (no table version).
        await dbpool.call(
            services.table_member_remove,
            membership=self.membership,
            user_id=command.data["user_id"],
        )
        await self._send(protocol.ack(command.request_id, version=0))

    async def do_set_role(self, command: protocol.Command) -> None:
        await dbpool.call(
            services.table_member_set_role,
            membership=self.membership,
            user_id=command.data["user_id"],
            role=command.data["role"],
        )
        await self._send(protocol.ack(command.request_id, version=0))

    # --- outbound --------------------------------------------------------------------------

    async def team_event(self, message: dict) -> None:
        if self.gone:
            return
        if not self.ready:
            self.backlog.append(message)
            return
        try:
            await self._relay(message)
        except Exception:
            # The fan-out drops this seat; close the socket too, so the client reconnects
            # rather than sitting at a table whose events no longer reach it.
            self.gone = True
            with contextlib.suppress(Exception):
                await self.base_send({"type": "websocket.close", "code": 1011})
            raise

    async def _relay(self, message: dict) -> None:
        # The broadcaster serialised the frame once for the whole team; only the events this
        # socket acts on come with the event itself (rooms.broadcast.READ_EVENTS).
        kind, text = message["kind"], message["text"]
        if kind == "timer_changed":
            data = message["event"]["data"]
            timers.watch(self.membership.team, data["round_id"], data["timer"])
        elif kind == "table_resumed":
            await self._reload()
        elif kind == "members_changed":
            data = message["event"]["data"]
            if data["user_id"] == self.membership.user_id:
                if data["role"] is None:
                    await self._send_text(text)
                    self.gone = True
                    await self.close(code=protocol.CLOSE_FORBIDDEN)
                    return
                self.membership.role = data["role"]
        elif kind == "session_ended":
            # For this member's sockets only (of the one session, when the event names one).
            data = message["event"]["data"]
            if data["user_id"] != self.membership.user_id or data["session"] not in (
                None,
                self.session,
            ):
                return
            await self._send_text(text)
            self.gone = True
            await self.close(code=protocol.CLOSE_UNAUTHENTICATED)
            return
        await self._send_text(text)
