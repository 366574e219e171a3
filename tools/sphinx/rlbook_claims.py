"""Sphinx extension: the book's "Checked claims" page, filled from the executed chapters.

``rlbook.claims.claim`` shows each claim as a ``<p class="rlbook-claim" id="claim-ID">`` line
carrying its record as JSON in a ``data-claim`` attribute. While Sphinx reads the chapters
(myst-nb executes them), this extension collects those lines per page; the ``rlbook-claims``
directive is replaced, once every page has been read, by a table of all of them: the claim,
its accepted range, the value measured in this build, and a link to the line in its chapter.
"""

from __future__ import annotations

import html
import json

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from rlbook.claims import HTML_LINE as _LINE


class claims_placeholder(nodes.General, nodes.Element):
    pass


class ClaimsDirective(SphinxDirective):
    def run(self):
        return [claims_placeholder()]


def collect(app, doctree):
    env = app.builder.env
    found = []
    for raw in doctree.findall(nodes.raw):
        for match in _LINE.finditer(raw.astext()):
            found.append(json.loads(html.unescape(match.group(1))))
    store = env.__dict__.setdefault("rlbook_claims", {})
    store[env.docname] = found


def purge(app, env, docname):
    env.__dict__.setdefault("rlbook_claims", {}).pop(docname, None)


def merge(app, env, docnames, other):
    store = env.__dict__.setdefault("rlbook_claims", {})
    for docname in docnames:
        store[docname] = other.__dict__.get("rlbook_claims", {}).get(docname, [])


def _table(app, fromdocname) -> str:
    env = app.builder.env
    store = env.__dict__.get("rlbook_claims", {})
    rows = []
    for docname in sorted(store):
        title = env.titles[docname].astext() if docname in env.titles else docname
        for c in store[docname]:
            uri = app.builder.get_relative_uri(fromdocname, docname)
            mark = "✓" if c["holds"] else "✗"
            rows.append(
                "<tr>"
                f"<td>{mark}</td>"
                f"<td><code>{html.escape(c['id'])}</code></td>"
                f"<td>{html.escape(c['text'])}</td>"
                f"<td>{html.escape(c['range'])}</td>"
                f"<td>{html.escape(c['measured'])}</td>"
                f'<td><a href="{uri}#claim-{html.escape(c["id"])}">'
                f"{html.escape(title)}</a></td>"
                "</tr>"
            )
    count = len(rows)
    head = (
        "<tr><th></th><th>id</th><th>claim</th><th>holds for</th>"
        "<th>measured in this build</th><th>checked in</th></tr>"
    )
    return (
        f"<p>{count} claims, each checked when its chapter ran for this build.</p>"
        f'<table class="table rlbook-claims"><thead>{head}</thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def resolve(app, doctree, fromdocname):
    for node in list(doctree.findall(claims_placeholder)):
        node.replace_self(nodes.raw("", _table(app, fromdocname), format="html"))


def setup(app):
    app.add_node(claims_placeholder)
    app.add_directive("rlbook-claims", ClaimsDirective)
    app.connect("doctree-read", collect)
    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)
    app.connect("doctree-resolved", resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
