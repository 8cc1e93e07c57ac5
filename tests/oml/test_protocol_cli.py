"""`loyal oml demo` runs the whole story on its own Anvil and ends with the cheater slashed."""
from __future__ import annotations

from typer.testing import CliRunner

from agents.cli import app


def test_oml_demo_slashes_the_cheater_only():
    result = CliRunner().invoke(app, ["oml", "demo", "--fingerprints", "2"])
    assert result.exit_code == 0, result.output
    assert "claim 1 confirmed" in result.output
    assert "to the cheating host" in result.output and "-> claim 1 filed" in result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") >= 5}
    assert rows["cheater"].split("│")[5].strip() == "0"      # stake after
    assert rows["honest"].split("│")[5].strip() == "500"
