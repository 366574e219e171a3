"""rlbook.claims: the visible line, the failure message, the arguments it refuses."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from rlbook.claims import HTML_LINE, ISSUES_URL, Claim, ClaimFailed, claim

ROOT = Path(__file__).resolve().parent.parent


def test_a_holding_claim_is_one_line_with_value_and_range():
    c = Claim("ch3-rtg-chain", "Reward-to-go removes variance", 0.72, 0.75, None)
    assert c.holds
    assert c.line() == (
        "✓ Reward-to-go removes variance (measured 0.72; holds for value < 0.75)"
    )
    bundle = c._repr_mimebundle_()
    assert bundle["text/plain"] == c.line() and "0.72" in bundle["text/html"]
    record = json.loads(html.unescape(HTML_LINE.search(bundle["text/html"]).group(1)))
    assert record["id"] == "ch3-rtg-chain" and record["holds"]


@pytest.mark.parametrize(
    "value", [0.5, np.float32(0.5), torch.tensor(0.5, dtype=torch.float64), 1]
)
def test_numbers_of_every_kind_are_accepted(value):
    claim("ch1-x", "a number", value, below=2, above=0)


def test_a_failing_claim_names_itself_the_value_the_range_and_where_to_report():
    with pytest.raises(ClaimFailed) as info:
        claim("ch3-rtg-chain", "Reward-to-go halves it", 0.9, above=0.4, below=0.6)
    text = str(info.value)
    for part in ("ch3-rtg-chain", "Reward-to-go halves it", "0.9", "0.4 < value < 0.6"):
        assert part in text
    assert ISSUES_URL in text and "defect of the book" in text


def test_nan_never_holds():
    with pytest.raises(ClaimFailed):
        claim("ch1-nan", "finite", float("nan"), below=1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(id="rtg", text="t", value=1, below=2), ValueError, "id"),
        (dict(id="ch1-a", text=" ", value=1, below=2), ValueError, "text"),
        (dict(id="ch1-a", text="t", value=1), ValueError, "range"),
        (dict(id="ch1-a", text="t", value=1, below=0, above=2), ValueError, "empty"),
        (dict(id="ch1-a", text="t", value="1", below=2), TypeError, "value"),
        (dict(id="ch1-a", text="t", value=torch.ones(2), below=2), TypeError, "value"),
        (dict(id="ch1-a", text="t", value=True, below=2), TypeError, "value"),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        claim(**kwargs)


def test_record_mode_writes_and_does_not_raise(tmp_path, monkeypatch):
    path = tmp_path / "records.jsonl"
    monkeypatch.setenv("RLBOOK_CLAIMS_RECORD", str(path))
    claim("ch1-a", "fails", 3.0, below=2)
    record = json.loads(path.read_text())["claim"]
    assert record["id"] == "ch1-a" and record["value"] == 3.0 and not record["holds"]


def test_the_issues_url_is_the_repository_of_the_config():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert ISSUES_URL == config["repository"]["url"].rstrip("/") + "/issues"


def test_the_claims_page_reads_the_record_back_from_the_html_line():
    c = Claim("ch3-a", 'It\'s <odd> & "quoted"', 0.5, 1.0, None)
    match = HTML_LINE.search(c._repr_mimebundle_()["text/html"])
    record = json.loads(html.unescape(match.group(1)))
    assert record["text"] == c.text and record["range"] == "value < 1"


def test_z_of_is_recorded_and_needs_an_upper_bound_only(tmp_path, monkeypatch):
    path = tmp_path / "records.jsonl"
    monkeypatch.setenv("RLBOOK_CLAIMS_RECORD", str(path))
    claim("ch1-z", "unbiased", 2.1, below=5.0, z_of=np.int64(15))
    assert json.loads(path.read_text())["claim"]["z_of"] == 15
    with pytest.raises(ValueError, match="below= only"):
        claim("ch1-z", "unbiased", 2.1, above=0.0, below=5.0, z_of=3)
    with pytest.raises(ValueError, match="z_of"):
        claim("ch1-z", "unbiased", 2.1, below=5.0, z_of=0)
    with pytest.raises(TypeError, match="z_of"):
        claim("ch1-z", "unbiased", 2.1, below=5.0, z_of=2.5)
