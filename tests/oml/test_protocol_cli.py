"""`loyal oml demo --in-process` runs the whole story on its own Anvil and ends with the cheater (and, with
--leak, the host whose copy leaked) slashed. The tiny model keeps it fast; SmolLM2 is the default."""
from __future__ import annotations


from tests.cli_runner import invoke


def test_oml_demo_slashes_the_cheater_and_the_leaker_only(tmp_path, monkeypatch):
    monkeypatch.setenv("LOYAL_HOME", str(tmp_path))
    result = invoke(["oml", "demo", "--tiny", "--fingerprints", "2", "--leak", "--in-process"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "claim 1 confirmed" in text and "claim 2 confirmed" in text
    assert "to the cheating host" in text and "-> claim 1 filed" in text
    assert "-> leak claim 2 against that host" in text
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") >= 5}
    assert rows["cheater"].split("│")[5].strip() == "0"      # stake after
    assert rows["leaker"].split("│")[5].strip() == "0"
    assert rows["honest"].split("│")[5].strip() == "500"
