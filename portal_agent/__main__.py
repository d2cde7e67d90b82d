"""python -m portal_agent: the CLI (portal-agent)."""

from portal_agent.cli import app

app()
