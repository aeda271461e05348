"""`podq settings`: every PODQ_ variable, its default and the value in force."""
from __future__ import annotations

import dataclasses

from podq.shared.clusters import env_name
from podq.shared.secrets import shown
from podq.shared.settings import sections
from podq.shared.settings_doc import markdown_table, setting_docs


def register(subparsers) -> None:
    parser = subparsers.add_parser("settings", help="list every PODQ_ setting and its value here")
    parser.add_argument("--markdown", action="store_true", help="print the table docs/operations.md holds")
    parser.set_defaults(run=run)


def run(args, settings) -> int:
    if args.markdown:
        print(markdown_table())
        return 0
    current = {}
    for section in sections():   # the PODQ_<SECTION>_* sections (the clusters and routes are built from them)
        for item in dataclasses.fields(getattr(settings, section.name)):
            current[f"PODQ_{section.name}_{item.name}".upper()] = getattr(getattr(settings, section.name), item.name)
    for row in setting_docs():
        if ENV_NAME in row.variable:   # per cluster: the variables each cluster of the cell sets
            prefix, suffix = row.variable.split(ENV_NAME)
            given = [(f"{prefix}{env_name(cluster.name)}{suffix}", value) for cluster in settings.clusters
                     for name, value in cluster.overrides if f"_{name.upper()}" == suffix]
            for variable, value in given or [(row.variable, "(the cell's own setting)")]:
                print(f"{variable}={shown(variable, value)!r}\n    {row.doc}")
            continue
        print(f"{row.variable}={shown(row.variable, current[row.variable])!r}\n    {row.doc}")
    return 0


ENV_NAME = "<NAME>"   # where setting_docs() puts a cluster's name in its variables
