"""The MLflow boundary: the only code of driftloop that imports ``mlflow``.

``store`` is the registered model (versions, aliases, tags, packages read once per process),
``tracking`` the run of a training, ``pyfunc`` the flavour ``mlflow.pyfunc.load_model`` loads,
``fresh_load`` the check that a version loads and scores in a clean process. Every client is made
for the project's own tracking URI; nothing sets MLflow's process-wide state.
"""
