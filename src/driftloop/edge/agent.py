"""``driftloop edge agent``: a device follows the champion, and keeps serving when it cannot.

Each round the agent fetches the newest bundle from its source (a file, or a URL such as a
bundle the central side publishes), and when it names a version the device does not serve:

1. verifies it (signature, checksums) into the store, where it is opened beside the others;
2. checks it is for the same model and interface (contract and outputs) as the one serving;
3. loads it here and runs its golden pairs, before any request meets it;
4. points the store at it (an atomic rename) and tells the server to reload;
5. waits for the server to say it serves the new version, and points back at the previous
   one (and reloads again) if it does not: a rollback by itself.

A source that cannot be reached, a bundle that fails any check: the round says why and the
version serving stays, for as long as that lasts. After each round the agent reports home (``report_to``):
profiles and outcomes of what the device served, never its rows (:mod:`driftloop.edge.reports`).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from tempfile import TemporaryDirectory

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from driftloop.edge.golden import golden_check
from driftloop.edge.reports import send_reports
from driftloop.edge.store import DeviceStore
from driftloop.errors import BundleError, DriftloopError
from driftloop.runtime.bundle import bundle_tag
from driftloop.runtime.kinds import load_package

logger = logging.getLogger("driftloop.edge")
# Seconds a fetch or a call to the server may take.
TIMEOUT_SECONDS = 30.0
# Bytes a fetched bundle may have: beyond, the source is not sending a bundle.
MAX_BUNDLE_BYTES = 512 * 2**20


@dataclass(frozen=True)
class Round:
    """What one round of the agent did: ``outcome`` is one of ``current`` (nothing new),
    ``swapped``, ``refused`` (the bundle failed a check), ``rolled back`` (the server did not take
    it), ``offline`` (the source could not be reached); ``version`` is the one serving after it."""

    outcome: str
    version: str | None
    detail: str = ""
    reported: str = ""  # what the report home after it did


class Agent:
    """Follows ``source`` for the device of ``store``, whose server answers at ``server``."""

    def __init__(
        self,
        store: DeviceStore,
        source: str,
        trusted: Ed25519PublicKey,
        *,
        server: str | None = None,
        admin_token: str | None = None,
        settle_seconds: float = 30.0,
        report_to: str | None = None,
        device: str = "device",
        report_token: str | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.trusted = trusted
        self.server = server.rstrip("/") if server else None
        self.admin_token = admin_token
        self.settle_seconds = settle_seconds
        self.report_to, self.device, self.report_token = report_to, device, report_token

    def round(self) -> Round:
        """One round: fetch, check, swap (or roll back); never raises for what a device meets."""
        serving = self.store.serving()
        have = bundle_tag(self.store.manifest(serving)["model"], serving) if serving is not None else None
        with TemporaryDirectory() as folder:
            try:
                bundle = fetch(self.source, Path(folder) / "fetched.bundle", unless=have)
            except DriftloopError as exc:
                logger.warning("source unreachable, still serving version %s: %s", serving, exc)
                return Round("offline", serving, str(exc))
            if bundle is None:
                return Round("current", serving)
            try:
                version = self._install(bundle, serving)
            except DriftloopError as exc:
                logger.error("bundle refused, still serving version %s: %s", serving, exc)
                return Round("refused", serving, str(exc))
        if version == serving:
            return Round("current", serving)
        return self._swap(version, serving)

    def report(self) -> str:
        """Send what the device saw since the last report (profiles and outcomes, never rows) to
        ``report_to``; what happened, in words. Unsent reports wait for the next round."""
        if self.report_to is None:
            return "no reports (no --report-to)"
        serving = self.store.serving()
        ready = _ready_version(self.server) == serving if self.server else None
        status = {"serving": serving, "ready": ready, "versions": self.store.versions()}
        try:
            rows = send_reports(self.store, self.device, self.report_to, self.report_token, status)
        except DriftloopError as exc:
            logger.warning("reports kept on the device for the next round: %s", exc)
            return f"reports kept on the device ({exc})"
        return f"reported {rows} predictions' profiles"

    def run(
        self, every_seconds: float, *, rounds: int | None = None, on_round: Callable[[Round], None] | None = None
    ) -> None:
        """Rounds every ``every_seconds`` (each followed by a report), forever (or ``rounds`` times)."""
        done = 0
        while rounds is None or done < rounds:
            outcome = self.round()
            outcome = replace(outcome, reported=self.report())
            if on_round is not None:
                on_round(outcome)
            done += 1
            if rounds is None or done < rounds:
                time.sleep(every_seconds)

    def _install(self, bundle: Path, serving: str | None) -> str:
        held = set(self.store.versions())
        version = self.store.install(bundle, self.trusted)
        if version == serving:
            return version
        try:
            if serving is not None:
                compatible(self.store, serving, version)
            golden_check(load_package(self.store.verified(version)), version)  # warmed and checked here first
        except DriftloopError:
            if version not in held:  # a refused version leaves nothing behind
                self.store.discard(version)
            raise
        return version

    def _swap(self, version: str, previous: str | None) -> Round:
        self.store.serve(version)
        taken = self._server_serves(version)
        if taken:
            logger.warning("now serving version %s (was %s)", version, previous)
            return Round("swapped", version)
        if previous is None:
            return Round("rolled back", None, f"the server did not take version {version}, and none served before")
        self.store.serve(previous)
        self._server_serves(previous)
        logger.error("the server did not take version %s: back to version %s", version, previous)
        return Round("rolled back", previous, f"the server did not report version {version} ready")

    def _server_serves(self, version: str) -> bool:
        """Whether the server says it serves ``version`` within ``settle_seconds`` (asked to reload
        first); with no server to ask, the store's pointer is the truth."""
        if self.server is None:
            return True
        self._reload()
        deadline = time.monotonic() + self.settle_seconds
        while time.monotonic() < deadline:
            if _ready_version(self.server) == version:
                return True
            time.sleep(0.25)
        return False

    def _reload(self) -> None:
        if self.admin_token is None:
            return  # the server follows the store's pointer on its own, every poll_seconds
        request = urllib.request.Request(
            f"{self.server}/admin/reload", method="POST", headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        try:
            urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS).close()
        except (urllib.error.URLError, OSError) as exc:
            logger.warning("could not ask the server to reload (it polls the store anyway): %s", exc)


def compatible(store: DeviceStore, serving: str, candidate: str) -> None:
    """A BundleError unless ``candidate`` is the same model, with the same interface (contract
    and outputs) and a graph this runtime reads, as ``serving``."""
    old, new = store.manifest(serving), store.manifest(candidate)
    if new["model"] != old["model"]:
        raise BundleError(f"version {candidate} is of model {new['model']!r}; this device serves {old['model']!r}")
    if new["interface_sha256"] != old["interface_sha256"]:
        raise BundleError(
            f"version {candidate} of {new['model']!r} takes or gives other data than version {serving} (another "
            "contract or other outputs): a device's callers would break; install it by hand if that is meant"
        )


def fetch(source: str, into: Path, *, unless: str | None = None) -> Path | None:
    """The bundle at ``source`` (a path, or an http(s) URL) copied to ``into``; a DriftloopError
    when it cannot be had. A URL is asked for it ``unless`` it is still the bundle of that entity
    tag (:func:`~driftloop.runtime.bundle.bundle_tag`), and None is the answer that it is."""
    if source.startswith(("http://", "https://")):
        request = urllib.request.Request(source, headers={"If-None-Match": unless} if unless else {})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
                data = answer.read(MAX_BUNDLE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return None  # not modified: the device serves the newest
            raise DriftloopError(f"cannot fetch {source}: {exc}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise DriftloopError(f"cannot fetch {source}: {exc}") from exc
        if len(data) > MAX_BUNDLE_BYTES:
            raise BundleError(f"{source} sent more than {MAX_BUNDLE_BYTES} bytes: not a bundle")
        into.write_bytes(data)
        return into
    path = Path(source)
    try:
        into.write_bytes(path.read_bytes())  # a copy: the publisher may replace the file meanwhile
    except OSError as exc:
        raise DriftloopError(f"cannot read {path}: {exc}") from exc
    return into


def _ready_version(server: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{server}/health/ready", timeout=TIMEOUT_SECONDS) as answer:
            version = json.loads(answer.read()).get("model_version")
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return str(version) if version is not None else None


__all__ = ["Agent", "Round", "compatible", "fetch"]
