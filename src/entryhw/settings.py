"""What the command line decided, with its files loaded: the input of ``makeService``.

:class:`entryhw.tap.Options` only parses; reading the certificates, the key and the
secret happens in :func:`load`, called by ``makeService``, so ``--help`` never touches
the disk and ``twistd -n entryhw`` and ``entryhw-server`` report a bad file the same way
(one line, exit status 2). :class:`Settings` is plain data so tests can build one.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from entryhw import config, ipc
from entryhw.policy import HostPolicy, OriginPolicy, PolicyError, RequestPolicy


@dataclass(frozen=True)
class Settings:
    """Everything the services need, decided."""

    port: int = 23518
    interface: str = "127.0.0.1"
    channel: str | int | None = None  # None: standalone; "stdio"; or an fd
    watchdog: float = 2.0
    certs: str | None = None
    modules: str | None = None
    crypto: Callable[[str, str], str] | None = None
    secret_file: str | None = None
    tls: Any = None  # entryhw.tls.ServerTLS when certificates are configured
    tls_only: bool = False
    insecure_client: bool = False
    reload_interval: float = 30.0
    policy: RequestPolicy | None = None  # None: the defaults for ``interface``
    allow_any_origin: bool = False
    config_file: str | None = None  # the entryhw.toml read, if any
    config_home: str | None = None  # where entryhw looked for it and for certs/
    certs_beside: bool = False  # certs/ found beside the executable, not named

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.interface).is_loopback


class ConfigError(Exception):
    """A setting that cannot be used; the message names it and says why."""


def load(options: Mapping[str, Any], environ: Mapping[str, str] = os.environ,
         found: config.Found | None = None) -> Settings:
    """Check the folders, load the secret and certificates, resolve the channel.

    With no certificate option, ``certs/`` beside the executable (``found.looked_in``)
    is used when it exists.
    """
    beside = False
    if found is not None and all(options[k] is None for k in ("certs", "cert-file", "key-file")):
        default = config.beside(found.looked_in, config.CERTS_DIR)
        if default is not None:
            options = {**options, "certs": str(default)}
            beside = True
    if found is not None and options["modules"] is None:
        # The original serves the modules/ folder near its executable; so do we.
        modules = config.beside(found.looked_in, config.MODULES_DIR)
        if modules is not None:
            options = {**options, "modules": str(modules)}
    for name in ("certs", "modules"):
        path = options[name]
        if path is not None and not os.path.isdir(path):
            raise ConfigError(f"--{name} {path!r} is not a directory")
    secret_path = _secret_path(options)
    try:
        channel = ipc.resolve_channel(options["ipc"], environ)
    except ipc.ChannelError as e:
        raise ConfigError(str(e)) from None
    try:
        policy = RequestPolicy(
            OriginPolicy.build(options["allow-origin"], bool(options["allow-any-origin"])),
            HostPolicy.build(options["interface"], options["allow-host"]))
    except PolicyError as e:
        raise ConfigError(str(e)) from None
    return Settings(
        port=options["port"],
        interface=options["interface"],
        channel=channel,
        watchdog=options["watchdog"],
        certs=options["certs"],
        modules=options["modules"],
        crypto=_load_secret(secret_path),
        secret_file=secret_path,
        tls=_load_tls(options),
        tls_only=bool(options["tls-only"]),
        insecure_client=bool(options["insecure-client"]),
        reload_interval=options["reload-interval"],
        policy=policy,
        allow_any_origin=bool(options["allow-any-origin"]),
        config_file=str(found.path) if found is not None and found.path is not None else None,
        config_home=str(found.looked_in) if found is not None else None,
        certs_beside=beside,
    )


def _secret_path(options: Mapping[str, Any]) -> str | None:
    path = options["secret-file"]
    if path is None and options["certs"] is not None:
        default = os.path.join(options["certs"], "secret")
        if os.path.exists(default):
            path = default
    return path


def _load_secret(path: str | None) -> Any:
    if path is None:
        return None
    from entryhw.secret import Crypto, SecretError  # cryptography only when needed

    try:
        return Crypto.from_file(path)
    except SecretError as e:
        raise ConfigError(f"--secret-file: {e}") from None


def _load_tls(options: Mapping[str, Any]) -> Any:
    if options["cert-file"] is None and options["key-file"] is None and options["certs"] is None:
        if options["tls-only"]:
            raise ConfigError("--tls-only needs certificates (--certs or --cert-file)")
        return None
    from entryhw import tls  # pyOpenSSL only when certificates may be configured

    try:
        sources = tls.find_sources(options["certs"], options["cert-file"], options["key-file"])
        if sources is None:
            if options["tls-only"]:
                raise ConfigError(f"--tls-only: no certificate files in {options['certs']}")
            return None
        return tls.ServerTLS(sources)
    except tls.TLSConfigError as e:
        raise ConfigError(f"TLS: {e}") from None
