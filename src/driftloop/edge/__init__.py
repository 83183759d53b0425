"""A model on a device: a signed bundle served with no registry, no lake and no PyTorch.

``store`` keeps the device's state in one folder (the bundles it verified and opened, which
version serves, and its prediction log); ``logbook`` writes each answered batch to SQLite
before the answer leaves, so a restart or a power cut loses no logged prediction;
``deployments`` answers with the version the store names, checked on its golden pairs before
it takes traffic; ``server`` is the same HTTP API as ``driftloop serve`` on top of them; and
``agent`` follows the champion from a source, checks each new version, swaps it in and rolls it
back if the server does not take it.
"""

# The device's admin token (its server's POST /admin/reload, which the agent calls too).
ADMIN_TOKEN_ENV = "DRIFTLOOP_ADMIN_TOKEN"
