"""Find, list and load the preset files (presets/*.toml).

Presets live in the top-level presets/ folder of a checkout; a wheel carries the same files as
ibtui/presets/. A path to any .toml file works wherever a preset name does.
"""

from __future__ import annotations

from pathlib import Path

from ibtui.config import RunConfig, load_toml
from ibtui.errors import ConfigError, unknown_name


def presets_dir() -> Path:
    packaged = Path(__file__).resolve().parent.parent / "presets"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "presets"


def preset_paths() -> dict[str, Path]:
    folder = presets_dir()
    return {p.stem: p for p in sorted(folder.glob("*.toml"))} if folder.is_dir() else {}


def load_preset(name_or_path: str) -> RunConfig:
    """A preset by name, or a config file by path; the config's name is the preset's."""
    known = preset_paths()
    if name_or_path in known:
        return load_toml(known[name_or_path])
    if name_or_path.endswith(".toml") or "/" in name_or_path:
        return load_toml(name_or_path)
    raise ConfigError(unknown_name("preset", name_or_path, known))
