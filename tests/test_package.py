"""The package as a whole: its version, and one place for each of the jobs several modules need."""

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

import emotion_recognition

SOURCES = sorted([*(ROOT / "emotion_recognition").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py"),
                  *ROOT.glob("*.py"), *(ROOT / "tests").glob("*.py")])


def test_version_is_a_release_number():
    assert re.fullmatch(r"\d+\.\d+\.\d+", emotion_recognition.__version__)
    result = subprocess.run([sys.executable, "-c", "import emotion_recognition as e; print(e.__version__)"],
                            capture_output=True, text=True, cwd=ROOT.parent, timeout=120)
    assert result.stdout.strip() == emotion_recognition.__version__, result.stderr


@pytest.mark.parametrize("pattern, home", [
    (r"os\.replace\(", "emotion_recognition/files.py"),                   # atomic writes
    (r"os\.dup2\(", "emotion_recognition/runtime.py"),                    # silencing native output
    (r"TF_CPP_MIN_LOG_LEVEL|TF_ENABLE_ONEDNN_OPTS", "emotion_recognition/runtime.py"),  # TensorFlow's environment
    (r"sys\.path\.(insert|append)|PYTHONPATH", None),                     # the package is installed, not patched in
    (r"keras\.src|from tensorflow import keras|tf\.keras\.(models|layers)", None),  # Keras 3 only
])
def test_each_job_lives_in_one_place(pattern, home):
    this_file = "tests/test_package.py"
    found = sorted({str(path.relative_to(ROOT)) for path in SOURCES
                    if re.search(pattern, path.read_text()) and str(path.relative_to(ROOT)) != this_file})
    assert found == ([home] if home else []), found


def test_changelog_has_a_section_for_this_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"\n## {emotion_recognition.__version__}\n" in changelog


def test_readme_layout_names_every_module():
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("```")[1]
    for path in sorted((ROOT / "emotion_recognition").rglob("*.py")):
        if path.name != "__init__.py":
            assert path.name in layout, path
    for name in re.findall(r"(\w+\.py)", layout):
        assert list(ROOT.rglob(name)), f"the README's layout names {name}, which does not exist"


def test_benchmarks_name_the_cpu_they_ran_on():
    from emotion_recognition.runtime import cpu_description

    description = cpu_description()
    assert f"{os.cpu_count()} cores" in description and not description.startswith(",")
