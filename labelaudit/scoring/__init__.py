"""`labelaudit score`: out-of-sample scores from a torch model or from cross-validated probes.

Every module here but choices.py imports torch; import them only from a command that needs
torch, after `labelaudit._deps.import_optional("torch")` has named the extra to install when it
is absent.
"""
