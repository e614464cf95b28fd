"""Imported only into the training data's fork server (``data._from_workers`` preloads it), so
that the batch workers it forks ignore Ctrl-C from their first instruction.

Ctrl-C reaches the whole process group, and the parent stops the pool itself. The fork server
gives each worker the SIGINT handling it had after its preloads; without this, a worker still
starting when Ctrl-C came printed a KeyboardInterrupt traceback before its initializer could
ignore the signal.
"""
import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
