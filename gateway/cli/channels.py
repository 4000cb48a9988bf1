"""The channels: plugins installed, channel accounts' health, a simulator, a statement file."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import uvicorn

from gateway.channel import StatementUnavailable
from gateway.cli.common import in_transaction, settings_of, with_gateway
from gateway.clock import Clock
from gateway.plugins import discover_channel_types, make_plugin_manager
from gateway.reports import channel_listing

STATEMENTS = Path(".paymux/statements")   # where `paymux statement download` writes without --out


def plugins(args: argparse.Namespace) -> int:
    types = discover_channel_types(make_plugin_manager())
    settings = settings_of(args)
    listing = {
        "plugins": [{"name": name, "module": t.__module__, "methods": list(t.methods),
                     "capabilities": sorted(c.value for c in t.capabilities)} for name, t in sorted(types.items())],
        "channel_accounts": [{"id": a.id, "plugin": a.plugin, "enabled": a.enabled,
                              "installed": a.plugin in types} for a in settings.channel_accounts],
    }
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    print("plugins:")
    for p in listing["plugins"]:
        print(f"  {p['name']:<12} methods: {', '.join(p['methods']) or '-'}; capabilities: {', '.join(p['capabilities'])}")
    print("channel accounts:")
    for a in listing["channel_accounts"]:
        state = "enabled" if a["enabled"] else "disabled"
        missing = "" if a["installed"] else "  (plugin NOT INSTALLED)"
        print(f"  {a['id']:<12} plugin {a['plugin']:<10} {state}{missing}")
    return 0


def channels(args: argparse.Namespace) -> int:
    """Each channel account: routing settings, health over the last minutes, circuit, limits used today."""
    settings = settings_of(args)
    listing = in_transaction(args, lambda conn: channel_listing(conn, settings, Clock().now(), args.minutes))
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    print(f"{'account':<14}{'plugin':<11}{'state':<10}{'prio':>5}{'wt':>4}  {'circuit':<10}"
          f"{'calls':>7}{'errors':>7}{'ok%':>7}{'ms':>8}  today (count/amount of limits, amount in minor units)")
    for c in listing:
        rate = "-" if c["success_rate"] is None else f"{c['success_rate'] * 100:.1f}"
        latency = "-" if c["mean_latency_ms"] is None else f"{c['mean_latency_ms']:.0f}"
        limits = c["limits"]
        today = (f"{c['today']['count']}/{limits.get('daily_count', '∞')} "
                 f"{c['today']['amount']}/{limits.get('daily_amount', '∞')}")
        print(f"{c['id']:<14}{c['plugin']:<11}{'enabled' if c['enabled'] else 'disabled':<10}{c['priority']:>5}"
              f"{c['weight']:>4}  {c['circuit']['state']:<10}{c['calls']:>7}{c['errors']:>7}{rate:>7}{latency:>8}  "
              f"{today}")
    return 0


def simulate(args: argparse.Namespace) -> int:
    """Run a channel's simulator on its own, with keys kept under .paymux/simulators/<plugin>/."""
    channel_type = discover_channel_types(make_plugin_manager()).get(args.plugin)
    workdir = Path(".paymux/simulators") / args.plugin
    made = channel_type.standalone_simulator(workdir, f"http://{args.host}:{args.port}") if channel_type else None
    if made is None:
        print(f"paymux: plugin {args.plugin!r} has no standalone simulator", file=sys.stderr)
        return 2
    app, account_block = made
    print(f"# {args.plugin} simulator on http://{args.host}:{args.port}; add this account to your config:\n")
    print(account_block, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def download_statement(args: argparse.Namespace) -> int:
    day = args.date
    try:
        content = with_gateway(settings_of(args), "statement", lambda gw: gw.download_statement(args.account, day))
    except StatementUnavailable as exc:
        print(f"paymux: no statement for {args.account} on {day}: {exc}", file=sys.stderr)
        return 1
    if args.out:
        out = Path(args.out)
    else:   # under .paymux/ (git-ignored, ours alone), never into the checkout
        out = STATEMENTS / f"{args.account}-{day.isoformat()}.statement"
        out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)   # a bill names payers: ours alone
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(content)
    print(f"saved {len(content)} bytes to {out}")
    return 0
