"""Make `dvc plots show` work offline: an HTML template with Vega, Vega-Lite and Vega-Embed inlined.

dvc-render's page loads those three from a CDN (dvc#5679). This script takes them from the npm
registry (`npm pack`, pinned versions), writes `.dvc/plots/offline.html` and points this clone's
`.dvc/config.local` at it (`plots.html_template`), so nothing machine-made is committed and a clone
without it still gets DVC's default page.

    python scripts/build_plots_template.py [--repo PATH]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Vega-Lite 5 is what DVC's plot specs are written for.
PACKAGES = {"vega": ("5.33.0", "build/vega.min.js"),
            "vega-lite": ("5.23.0", "build/vega-lite.min.js"),
            "vega-embed": ("6.29.0", "build/vega-embed.min.js")}
TEMPLATE = ".dvc/plots/offline.html"

PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>Checkpoint Zoo plots</title>
    <!-- Vega, Vega-Lite and Vega-Embed inlined from npm: this page needs no network. -->
%s
    <style> table { border-spacing: 15px; } </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", type=Path, default=ROOT, help="the zoo clone to set up (default: this one)")
    root = p.parse_args(argv).repo.resolve()
    npm = shutil.which("npm")
    if npm is None:
        print("npm not found: `dvc plots show` will load Vega from its CDN; install nodejs/npm and rerun",
              file=sys.stderr)
        return 1
    scripts = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (version, member) in PACKAGES.items():
            proc = subprocess.run([npm, "pack", f"{name}@{version}", "--silent"], cwd=tmp,
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"npm pack {name}@{version} failed: {proc.stderr.strip()[-300:]}", file=sys.stderr)
                return 1
            tarball = Path(tmp) / proc.stdout.strip().splitlines()[-1]
            with tarfile.open(tarball) as tar:
                code = tar.extractfile(f"package/{member}").read().decode("utf-8")
            # a literal "</script" inside the code would end the inline element early
            code = code.replace("</script", "<\\/script")
            for placeholder in ("{plot_divs}", "{scripts}", "{refresh_tag}"):
                if placeholder in code:
                    code = code.replace(placeholder, placeholder.replace("{", "{\u200b"))
            scripts.append(f"    <script>/* {name}@{version} */\n{code}\n    </script>")
    out = root / TEMPLATE
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".tmp")
    tmp_out.write_text(PAGE % "\n".join(scripts), encoding="utf-8")
    tmp_out.replace(out)
    subprocess.run([sys.executable, "-m", "dvc", "config", "--local", "plots.html_template",
                    str(Path(TEMPLATE).relative_to(".dvc"))], cwd=root, check=True)
    print(f"wrote {TEMPLATE} ({out.stat().st_size // 1024} KB) and set plots.html_template in .dvc/config.local")
    return 0


if __name__ == "__main__":
    sys.exit(main())
