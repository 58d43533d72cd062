"""``hourglass claims``: the page is produced, every claim has a verdict, a figure and its numbers."""

from __future__ import annotations

import json

import pytest

from hourglass.claims import VERDICTS, all_claims
from hourglass.cli import main


@pytest.fixture(scope="module")
def quick_page(tmp_path_factory):
    out = tmp_path_factory.mktemp("claims")
    rc = main(["claims", "--quick", "--out", str(out), "--threads", "1"])
    return rc, out


def test_every_claim_is_registered_once_and_numbered_from_one():
    claims = all_claims()
    assert list(claims) == list(range(1, len(claims) + 1))
    assert len({c.check.__module__ for c in claims.values()}) == len(claims)


def test_the_quick_run_writes_the_page_with_a_verdict_and_a_figure_per_claim(quick_page):
    rc, out = quick_page
    assert rc == 0
    record = json.loads((out / "claims.json").read_text())
    numbers = [c["number"] for c in record["claims"]]
    assert numbers == list(all_claims())
    md = (out / "claims.md").read_text()
    page = (out / "claims.html").read_text()
    for c in record["claims"]:
        assert c["verdict"] in VERDICTS, c
        assert c["numbers"] and c["experiment"] and c["result"], c["number"]
        assert c["seeds"], c["number"]
        assert (out / c["figure"]).stat().st_size > 5000, c["figure"]
        assert f"## {c['number']}. {c['title']}" in md
        assert f'id="claim-{c["number"]}"' in page
        if c["verdict"] == "holds with a caveat":
            assert c["caveat"]
    assert record["meta"]["quick"] is True and record["meta"]["failed"] == []
    assert page.count("data:image/png;base64,") == len(record["claims"])  # the page stands alone


def test_the_page_is_written_again_not_appended(tmp_path):
    for _ in range(2):
        assert main(["claims", "--quick", "--only", "1", "--out", str(tmp_path), "--threads", "1"]) == 0
    md = (tmp_path / "claims.md").read_text()
    assert md.count("## 1. ") == 1
    assert json.loads((tmp_path / "claims.json").read_text())["meta"]["command"].startswith("hourglass claims")


@pytest.mark.parametrize("args, message", [
    (["--only", "99"], "there is no claim 99"),
    (["--only", "one"], "'one' is not a claim number"),
    (["--seeds", "a,b"], "--seeds 'a,b'"),
    (["--data", "plane3d"], "not labelled images"),
])
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert main(["claims", "--quick", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "claims.md").exists()
