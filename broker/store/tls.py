"""TLS to Redis: redis-py's and kombu's TLS arguments from the PODQ_REDIS_TLS_* settings, and the one
handshake tried before a TLS client is handed out.

A certificate problem is a setting problem: :func:`check_tls` raises it at once as a
:class:`SettingsError` naming the setting, instead of letting the client retry it like an outage.
A server that does not speak TLS is named in about a second (see :data:`TLS_FIRST_TRY`).
"""
from __future__ import annotations

import socket
import ssl
from pathlib import Path

from podq.shared.errors import SettingsError
from podq.shared.settings import RedisSettings


def tls_options(settings: RedisSettings) -> dict:
    """redis-py's SSL connection arguments from the PODQ_REDIS_TLS_* settings (files checked here)."""
    options: dict = {"ssl_cert_reqs": "required", "ssl_check_hostname": settings.tls_check_hostname}
    for name, value, key in (("PODQ_REDIS_TLS_CA_FILE", settings.tls_ca_file, "ssl_ca_certs"),
                             ("PODQ_REDIS_TLS_CERT_FILE", settings.tls_cert_file, "ssl_certfile"),
                             ("PODQ_REDIS_TLS_KEY_FILE", settings.tls_key_file, "ssl_keyfile")):
        if value:
            path = Path(value)
            try:
                path.open("rb").close()
            except OSError as exc:
                raise SettingsError(f"{name}: cannot read {value}: {exc.strerror or exc}") from None
            options[key] = str(path)
    if settings.tls_cert_file and not settings.tls_key_file:
        raise SettingsError("PODQ_REDIS_TLS_KEY_FILE is unset: the client certificate PODQ_REDIS_TLS_CERT_FILE "
                            "needs its key")
    if settings.tls_key_file and not settings.tls_cert_file:
        raise SettingsError("PODQ_REDIS_TLS_CERT_FILE is unset: PODQ_REDIS_TLS_KEY_FILE is the key of a client "
                            "certificate")
    return options


def _context(settings: RedisSettings) -> ssl.SSLContext:
    options = tls_options(settings)
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    context.check_hostname = settings.tls_check_hostname
    if "ssl_certfile" in options:
        try:
            context.load_cert_chain(options["ssl_certfile"], options["ssl_keyfile"])
        except ssl.SSLError as exc:
            raise SettingsError(f"PODQ_REDIS_TLS_KEY_FILE: it is not the key of PODQ_REDIS_TLS_CERT_FILE, or "
                                f"one is not PEM: {exc.reason or exc}") from None
    return context


# How long the first TLS handshake may take before podq asks whether the server speaks plain RESP.
# A plain-text Redis given a TLS ClientHello waits for the rest of an inline command and answers
# nothing, so without this a wrong port would cost the whole socket timeout.
TLS_FIRST_TRY = 1.0


def check_tls(host: str, port: int, settings: RedisSettings) -> None:
    """One TLS handshake and PING to ``host:port``; a certificate problem raises SettingsError naming the setting.

    An unreachable server is not a setting problem: it is left to the client's retries. A server
    that does not answer the handshake within :data:`TLS_FIRST_TRY` seconds is asked for a
    plain-text PING: one that answers it does not speak TLS (said at once); one that does not
    is given the rest of ``PODQ_REDIS_SOCKET_TIMEOUT`` for a second handshake (a slow link).
    """
    context = _context(settings)
    where = f"{host}:{port}"
    first = min(TLS_FIRST_TRY, settings.socket_timeout)
    try:
        reply = _handshake(context, host, port, timeout=first, settings=settings)
    except TimeoutError:
        if _speaks_plain_resp(host, port, timeout=first):
            raise SettingsError(f"PODQ_REDIS_URL: rediss:// (TLS), but the server at {where} does not speak TLS "
                                f"(it answered a plain-text PING): use redis://, or the server's TLS port") from None
        try:
            reply = _handshake(context, host, port, timeout=settings.socket_timeout, settings=settings)
        except TimeoutError:
            raise SettingsError(f"PODQ_REDIS_URL: rediss:// (TLS), but the server at {where} accepted the "
                                f"connection and did not answer the TLS handshake within "
                                f"{settings.socket_timeout:g} s: it does not speak TLS, or is stuck") from None
    if reply is None or reply:
        return
    # Closed without a word right after the handshake: the server did not accept this client's
    # certificate (some TLS terminators send no alert).
    if settings.tls_cert_file:
        raise SettingsError(f"PODQ_REDIS_TLS_CERT_FILE: the server at {where} closed the connection after "
                            f"the TLS handshake: it does not accept the client certificate "
                            f"{settings.tls_cert_file}")
    raise SettingsError(f"PODQ_REDIS_TLS_CERT_FILE: the server at {where} closed the connection after the "
                        f"TLS handshake: it requires a client certificate; set PODQ_REDIS_TLS_CERT_FILE and "
                        f"PODQ_REDIS_TLS_KEY_FILE")


def _handshake(context: ssl.SSLContext, host: str, port: int, *, timeout: float,
               settings: RedisSettings) -> bytes | None:
    """The server's first reply to PING over TLS (b"" if it closed); None if it cannot be reached.

    TimeoutError when the handshake or the reply takes longer than ``timeout``.
    """
    where = f"{host}:{port}"
    try:
        raw = socket.create_connection((host, port), timeout=settings.socket_timeout)
    except OSError:
        return None
    raw.settimeout(timeout)
    try:
        with raw, context.wrap_socket(raw, server_hostname=host) as tls:
            # TLS 1.3: the server judges the client's certificate after the client's handshake
            # ends; its verdict arrives with the first reply.
            tls.sendall(b"PING\r\n")
            return tls.recv(64)
    except ssl.SSLCertVerificationError as exc:
        raise SettingsError(_verify_message(exc, where, settings)) from None
    except ssl.SSLError as exc:
        raise SettingsError(_alert_message(exc, where, settings)) from None
    except TimeoutError:
        raise
    except OSError:
        return None


def _speaks_plain_resp(host: str, port: int, *, timeout: float) -> bool:
    """True when ``host:port`` answers a plain-text PING as a Redis server does (+PONG, or -NOAUTH …)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as plain:
            plain.settimeout(timeout)
            plain.sendall(b"PING\r\n")
            return plain.recv(1)[:1] in (b"+", b"-")
    except OSError:
        return False


def _verify_message(exc: ssl.SSLCertVerificationError, where: str, settings: RedisSettings) -> str:
    reason = exc.verify_message or exc.reason or str(exc)
    if exc.verify_code == 10:   # X509_V_ERR_CERT_HAS_EXPIRED
        return (f"PODQ_REDIS_URL: the TLS certificate of the server at {where} has expired ({reason}); "
                f"renew the server's certificate")
    if exc.verify_code == 9:    # X509_V_ERR_CERT_NOT_YET_VALID
        return f"PODQ_REDIS_URL: the TLS certificate of the server at {where} is not valid yet ({reason})"
    if "hostname" in reason.lower() or "ip address mismatch" in reason.lower():
        return (f"PODQ_REDIS_TLS_CHECK_HOSTNAME: the TLS certificate of the server at {where} does not name "
                f"that host ({reason}); connect by a name the certificate holds, or set it to false")
    ca = settings.tls_ca_file or "the system's CAs (PODQ_REDIS_TLS_CA_FILE is unset)"
    return (f"PODQ_REDIS_TLS_CA_FILE: the TLS certificate of the server at {where} is not signed by {ca} "
            f"({reason})")


def _alert_message(exc: ssl.SSLError, where: str, settings: RedisSettings) -> str:
    reason = (exc.reason or str(exc)).upper()
    if "WRONG_VERSION_NUMBER" in reason or "PACKET_LENGTH_TOO_LONG" in reason or "RECORD_LAYER" in reason:
        return f"PODQ_REDIS_URL: rediss:// (TLS), but the server at {where} does not speak TLS"
    if "CERTIFICATE_REQUIRED" in reason or ("HANDSHAKE_FAILURE" in reason and not settings.tls_cert_file):
        return (f"PODQ_REDIS_TLS_CERT_FILE: the server at {where} requires a client certificate; set "
                f"PODQ_REDIS_TLS_CERT_FILE and PODQ_REDIS_TLS_KEY_FILE ({exc.reason})")
    if any(word in reason for word in ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_EXPIRED",
                                       "CERTIFICATE_UNKNOWN", "DECRYPT_ERROR")):
        return (f"PODQ_REDIS_TLS_CERT_FILE: the server at {where} refused this client's certificate "
                f"{settings.tls_cert_file} ({exc.reason})")
    return f"PODQ_REDIS_URL: TLS with the server at {where} failed: {exc.reason or exc}"
