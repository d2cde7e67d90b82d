"""portal-agent command line (typer)."""

from __future__ import annotations

import typer

from core.config import get_settings

app = typer.Typer(help="portal-agent: reads payer portals for claim status, denials, auths and enrollment.",
                  no_args_is_help=True)


def _sandbox_ports(port_base: int | None) -> dict[str, int]:
    s = get_settings().sandbox
    if port_base is None:
        return {"control": s.control_port, "clearinghouse": s.clearinghouse_port,
                "commercial": s.commercial_port, "medicaid": s.medicaid_port}
    if port_base == 0:
        return dict.fromkeys(("control", "clearinghouse", "commercial", "medicaid"), 0)
    return {"control": port_base, "clearinghouse": port_base + 1, "commercial": port_base + 2,
            "medicaid": port_base + 3}


@app.command()
def sandbox(
    seed: int = typer.Option(None, help="world seed (default from settings)"),
    size: int = typer.Option(None, help="number of claims"),
    accounts: int = typer.Option(None, help="demo accounts per portal"),
    profile: str = typer.Option(None, help="fault profile: off | realistic | faulty"),
    port_base: int = typer.Option(None, help="control on BASE, portals on BASE+1..3; 0 = free ports"),
) -> None:
    """Run the three sandbox payer portals and print their URLs and demo logins."""
    from fixtures.server import run  # noqa: TID251 - the sandbox is a demo/test tool, loaded on demand

    s = get_settings().sandbox
    if profile is not None and profile not in ("off", "realistic", "faulty"):
        raise typer.BadParameter("must be off, realistic or faulty", param_hint="--profile")
    run(seed if seed is not None else s.seed, size or s.size, accounts or s.accounts_per_portal,
        profile or s.profile, s.host, _sandbox_ports(port_base), False)


@app.command()
def demo(port_base: int = typer.Option(None, help="see `sandbox`")) -> None:
    """The README's main job. Today: the sandbox portals with demo logins (the sweep comes next)."""
    sandbox(seed=None, size=None, accounts=None, profile=None, port_base=port_base)


if __name__ == "__main__":
    app()
