"""Print pyproject.toml's optional dependencies at their lower bounds (`name==bound`), for `.ci/run --lowest`.
torch and torchvision are left out: the machine's disk holds one build of each."""
import re
import tomllib
from pathlib import Path

project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
pins = {}
for requirement in [r for extra in project["optional-dependencies"].values() for r in extra]:
    match = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9.]*)", requirement.replace(" ", ""))
    if match and match[1].lower() not in ("torch", "torchvision"):
        pins[match[1]] = match[2]
print("\n".join(f"{name}=={version}" for name, version in sorted(pins.items())))
