"""``drconsole serve ssh|web``: the console for responders and wall screens, without a shell.

    users.py        the users file (name, role, authorized keys), validated with file:line:field errors
    host_key.py     the server's host key: read (refused when others can read it) or generated
    roles.py        what each role runs, and the allow-listed environment its console gets
    pty_console.py  one console process on its own pseudo-terminal: spawn, proxy, resize, hang up, reap
    spawners.py     how that process starts: forked from the zygote, or a fresh interpreter
    zygote.py       the process that has imported the console and forks one per session
    session_main.py ``drconsole ARGS`` as the session leader of its terminal (the fresh-interpreter path)
    ssh.py          the asyncssh server: public-key auth, one console per session, nothing else
    run.py          ``serve ssh`` in the foreground: signals (TERM stops, HUP reloads the users file)
    web.py          the read-only dashboard in a browser (textual-serve), viewer role only
    audit.py        session start and end in the audit log (playbooks.audit)

The CLI is console/cli/serve.py. Nothing here is imported by a headless command.
"""
