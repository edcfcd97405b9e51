"""The MQTT connection: one thread, a coalescing outbox, reconnects with backoff forever.

Thread crossings (the only ones): ``set_retained``, ``clear_retained``, ``send_event`` and
``send_if_connected`` may be called from any thread; they take ``_lock`` for a dictionary or
deque update and return at once, so a broker that is down or slow never stalls capture,
detection or the web side. Everything else (the paho client, its socket, the callbacks given
to the constructor) belongs to the MQTT thread.

What is kept while the broker is away:

- retained states: only the latest payload per topic; after every (re)connect all of them are
  published again (the broker may have restarted without its retained messages);
- events: at most ``max_events`` (QoS 1), the oldest dropped and counted beyond that;
- transient messages (the delta): nothing; they are only sent while connected.

What is received is bounded: the client speaks MQTT 5 and sends Maximum Packet Size
(``MAX_PACKET``) in its CONNECT, so the broker drops anything bigger instead of sending it.
A broker that speaks only 3.1.1 (it refuses MQTT 5) is spoken to in 3.1.1, and there a packet
announcing more than ``MAX_PACKET`` ends the connection before its payload is read
(``_BoundedClient``), so an oversized message never reaches memory whole either way.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from motiond.backoff import RECONNECT
from motiond.config.mqtt import MqttConfig
from motiond.threads import named_thread

logger = logging.getLogger(__name__)

CONNACK_TIMEOUT = 10.0  # seconds from the TCP connection to the broker's answer
LOOP_TIMEOUT = 0.1  # seconds the thread waits for network events between outbox flushes
MAX_EVENTS = 100
PAHO_QUEUE = 200  # QoS 1 messages paho may hold unacknowledged; beyond that we coalesce
STOP_FLUSH = 2.0  # seconds to get "offline" out at shutdown
# The largest packet taken from the broker: commands are a few bytes, the retained messages
# looked at (Home Assistant discovery, camera states) a few KiB.
MAX_PACKET = 256 * 1024
UNSUPPORTED_PROTOCOL = 0x84  # CONNACK reason code (paho reports a 3.1.1 broker's refusal so)

MessageHandler = Callable[[str, bytes, bool], None]  # topic, payload, retained


class _BoundedClient(paho.Client):
    """paho's client, refusing to read a packet's payload beyond ``max_packet`` bytes.

    paho has no hook between a packet's length and its payload, so this overrides its socket
    read (``_sock_recv``): once the remaining length is known and too large, the read fails
    and paho drops the connection, with nothing of the payload read."""

    max_packet = MAX_PACKET
    oversized = 0  # the length of the last packet refused (MQTT thread)

    def _sock_recv(self, bufsize: int) -> bytes:
        packet = self._in_packet
        if packet["have_remaining"] and packet["remaining_length"] > self.max_packet:
            self.oversized = packet["remaining_length"]
            raise ConnectionAbortedError(f"a packet of {self.oversized} bytes")
        return super()._sock_recv(bufsize)


@dataclass(frozen=True, slots=True)
class _Event:
    topic: str
    payload: bytes


class MqttClient:
    """Keeps a connection to the broker and publishes what the rest of motiond hands it.

    ``status_topic`` gets ``online`` (retained) on every connect and ``offline`` as the last
    will and at a clean stop. ``subscriptions`` are (re)made on every connect; messages on them
    go to ``on_message`` and ``on_tick`` runs about every ``LOOP_TIMEOUT``, both on the MQTT
    thread.
    """

    def __init__(
        self,
        config: MqttConfig,
        client_id: str,
        status_topic: str,
        subscriptions: Sequence[str],
        *,
        on_message: MessageHandler,
        on_tick: Callable[[], None] = lambda: None,
        max_events: int = MAX_EVENTS,
        protocol: MQTTProtocolVersion = paho.MQTTv5,
    ) -> None:
        self.config = config
        self.client_id = client_id
        self.status_topic = status_topic
        self.subscriptions = tuple(subscriptions)
        self.on_message = on_message
        self.on_tick = on_tick
        self.connected = False  # written by the MQTT thread only
        self.last_error: str | None = None  # why the last attempt failed or the link was lost
        self.connection_failures = 0
        self.events_dropped = 0
        # Protects _retained, _clears, _events, _transient and events_dropped; taken briefly by
        # the pipeline's threads (through the set_/send_ methods) and by the MQTT thread.
        self._lock = threading.Lock()
        self._retained: dict[str, bytes] = {}
        self._clears: set[str] = set()
        self._events: deque[_Event] = deque()
        self._max_events = max_events
        self._transient: dict[str, bytes] = {}
        self._sent: dict[str, bytes] = {}  # MQTT thread: retained payloads published since connect
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._refused: str | None = None  # MQTT thread: the broker's CONNACK refusal
        self._logged_reason: str | None = None  # MQTT thread: the failure last logged
        self._protocol = protocol  # MQTT thread: 3.1.1 once the broker refused 5
        self._client = self._make_client()

    # -- the thread-safe entries ----------------------------------------------------------------

    def set_retained(self, topic: str, payload: str | bytes) -> None:
        """Publish ``payload`` retained on ``topic`` (now, or once connected); only the latest
        payload of a topic is kept."""
        data = payload.encode() if isinstance(payload, str) else payload
        with self._lock:
            self._clears.discard(topic)
            self._retained[topic] = data

    def clear_retained(self, topic: str) -> None:
        """Delete the broker's retained message on ``topic`` (an empty retained message)."""
        with self._lock:
            self._retained.pop(topic, None)
            self._clears.add(topic)

    def send_event(self, topic: str, payload: str | bytes) -> None:
        """Publish with QoS 1, not retained; kept while disconnected up to ``max_events``."""
        data = payload.encode() if isinstance(payload, str) else payload
        with self._lock:
            if len(self._events) >= self._max_events:
                self._events.popleft()
                self.events_dropped += 1
            self._events.append(_Event(topic, data))
        self._wake.set()

    def send_if_connected(self, topic: str, payload: str | bytes) -> None:
        """Publish with QoS 0, not retained, only while connected (the latest per topic)."""
        if not self.connected:
            return
        data = payload.encode() if isinstance(payload, str) else payload
        with self._lock:
            self._transient[topic] = data

    def retained(self, topic: str) -> bytes | None:
        """The payload last handed to ``set_retained`` for ``topic`` (None if none or cleared)."""
        with self._lock:
            return self._retained.get(topic)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("MqttClient already started")
        self.set_retained(self.status_topic, "online")
        self._thread = named_thread(self._run, "mqtt")
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish ``offline``, disconnect and join the thread (at most ``timeout``)."""
        if self._thread is None:
            raise RuntimeError("MqttClient not started")
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("mqtt: the client thread did not stop within %gs", timeout)

    # -- the MQTT thread --------------------------------------------------------------------------

    def _make_client(self) -> _BoundedClient:
        config = self.config
        v5 = self._protocol == paho.MQTTv5
        client = _BoundedClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=None if v5 else True,
            protocol=self._protocol,
        )
        if config.username is not None:
            client.username_pw_set(config.username, config.password)
        if config.tls is not None:
            tls = config.tls
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls.ca_file else None,
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(tls.insecure)
        client.will_set(self.status_topic, "offline", qos=1, retain=True)
        client.max_queued_messages_set(PAHO_QUEUE)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_paho_message
        return client

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                was_connected = self._session()
            except Exception:
                logger.exception("mqtt: the client failed; reconnecting")
                was_connected = False
            if self._stop.is_set():
                break
            failures = 1 if was_connected else failures + 1
            self._stop.wait(RECONNECT.delay(failures))
        self._say_goodbye()

    def _session(self) -> bool:
        """Connect, then serve until the link is lost or we stop; True if it was connected."""
        config = self.config
        self._refused = None
        if self._client.protocol != self._protocol:  # the broker refused MQTT 5
            self._client = self._make_client()
        try:
            if self._protocol == paho.MQTTv5:
                limits = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                limits.MaximumPacketSize = MAX_PACKET
                self._client.connect(
                    config.host,
                    config.port,
                    round(config.keepalive),
                    clean_start=True,
                    properties=limits,
                )
            else:
                self._client.connect(config.host, config.port, round(config.keepalive))
        except (OSError, ValueError) as exc:  # ssl errors are OSErrors (and ValueErrors)
            self._note_failure(describe_connect_error(exc, config))
            return False
        deadline = time.monotonic() + CONNACK_TIMEOUT
        while not self.connected:
            rc = self._client.loop(LOOP_TIMEOUT)
            refused = self._refusal()
            if refused is not None:
                self._note_failure(refused)
                return False
            if self._stop.is_set():
                return False
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or time.monotonic() > deadline:
                reason = "no answer to CONNECT" if rc == 0 else paho.error_string(rc)
                self._note_failure(f"{reason} from {config.host}:{config.port}")
                self._client.disconnect()
                return False
        logger.info("mqtt: connected to %s:%d as %s", config.host, config.port, self.client_id)
        self._logged_reason = None
        self.last_error = None
        if self.subscriptions:
            self._client.subscribe([(topic, 1) for topic in self.subscriptions])
        while not self._stop.is_set():
            self.on_tick()
            self._flush()
            rc = self._client.loop(LOOP_TIMEOUT)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or not self.connected:
                reason = paho.error_string(rc) if rc else "the broker closed the connection"
                if self._client.oversized:
                    reason = (
                        f"the broker sent a message of {self._client.oversized} bytes "
                        f"(more than {MAX_PACKET}); dropped unread"
                    )
                    self._client.oversized = 0
                self.last_error = reason
                self._note_lost(reason)
                return True
        return True

    def _refusal(self) -> str | None:
        """The broker's refusal, if _on_connect (run inside loop()) noted one."""
        return self._refused

    def _on_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: object,
        reason_code: ReasonCode,
        properties: object,
    ) -> None:
        if reason_code.is_failure:
            if reason_code.value == UNSUPPORTED_PROTOCOL and self._protocol == paho.MQTTv5:
                self._protocol = paho.MQTTv311
                logger.info(
                    "mqtt: the broker speaks MQTT 3.1.1 only: switching to it (packets over "
                    "%d bytes are refused as they are read)",
                    MAX_PACKET,
                )
            self._refused = describe_refusal(reason_code, self.config)
            return
        self._sent.clear()  # everything retained goes out again
        self.connected = True

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: object,
        flags: object,
        reason_code: ReasonCode,
        properties: object,
    ) -> None:
        self.connected = False
        with self._lock:
            self._transient.clear()

    def _on_paho_message(self, client: paho.Client, userdata: object, message: object) -> None:
        assert isinstance(message, paho.MQTTMessage)
        try:
            self.on_message(message.topic, bytes(message.payload), bool(message.retain))
        except Exception:
            logger.exception("mqtt: handling a message on %s failed", message.topic)

    def _note_failure(self, reason: str) -> None:
        self.connection_failures += 1
        self.connected = False
        self.last_error = reason
        if reason != self._logged_reason:
            self._logged_reason = reason
            logger.warning("mqtt: cannot connect: %s; retrying with backoff", reason)
        else:
            logger.debug("mqtt: cannot connect (again): %s", reason)

    def _note_lost(self, reason: str) -> None:
        config = self.config
        self._logged_reason = reason
        logger.warning(
            "mqtt: lost the connection to %s:%d (%s); reconnecting with backoff",
            config.host,
            config.port,
            reason,
        )

    def _flush(self) -> None:
        """Publish what changed since the last flush; while paho is still writing, wait."""
        if self._client.want_write():
            return
        with self._lock:
            clears = list(self._clears)
            states = [(t, p) for t, p in self._retained.items() if self._sent.get(t) != p]
            events = list(self._events)
            self._events.clear()
            transient = list(self._transient.items())
            self._transient.clear()
        for topic in clears:
            if self._publish(topic, b"", qos=1, retain=True):
                with self._lock:
                    self._clears.discard(topic)
                self._sent.pop(topic, None)
        for topic, payload in states:
            if self._publish(topic, payload, qos=1, retain=True):
                self._sent[topic] = payload
        unsent = [e for e in events if not self._publish(e.topic, e.payload, qos=1, retain=False)]
        if unsent:
            with self._lock:
                self._events.extendleft(reversed(unsent))
        for topic, payload in transient:
            self._publish(topic, payload, qos=0, retain=False)

    def _publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def _say_goodbye(self) -> None:
        """At a clean stop: ``offline`` on the status topic, then disconnect."""
        if not self.connected:
            return
        info = self._client.publish(self.status_topic, b"offline", qos=1, retain=True)
        deadline = time.monotonic() + STOP_FLUSH
        while not info.is_published() and self.connected and time.monotonic() < deadline:
            self._client.loop(0.05)
        self._client.disconnect()
        self._client.loop(0.05)
        self.connected = False


def describe_refusal(reason_code: ReasonCode, config: MqttConfig) -> str:
    """The broker's CONNACK refusal in words, with what to check."""
    where = f"{config.host}:{config.port}"
    text = str(reason_code)
    if reason_code.value in (4, 5, 0x86, 0x87):  # bad user name or password, not authorized
        who = f"user {config.username!r}" if config.username else "no user name"
        return (
            f"the broker at {where} refused the login ({text}, {who}): check mqtt.username "
            f"and mqtt.password / password_file"
        )
    return f"the broker at {where} refused the connection: {text}"


def describe_connect_error(exc: BaseException, config: MqttConfig) -> str:
    """A failed TCP or TLS connection in words."""
    where = f"{config.host}:{config.port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: the certificate of {where} is not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS with {where} failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {where} refused (is the broker running?)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no answer from {where} (timed out)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {config.host}: {exc.strerror}"
    return f"cannot reach {where}: {exc}"


def default_client_id(topic_prefix: str) -> str:
    """``motiond-<hostname>-<prefix>``: stable across restarts, distinct per host and prefix."""
    host = socket.gethostname().split(".")[0] or "host"
    return f"motiond-{host}-{topic_prefix.replace('/', '_')}"[:128]


__all__ = ["MqttClient", "default_client_id"]
