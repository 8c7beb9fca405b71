"""Before Qt starts on Linux/X11: are the system libraries its xcb platform plugin needs installed?

PySide6's wheels bring Qt itself but not these X11 libraries, and a fresh Debian or Ubuntu desktop lacks some
(libxcb-icccm4 and libxcb-keysyms1 on Debian 12). Without them Qt aborts with "Could not load the Qt platform
plugin xcb", which says nothing about what to install. This check names the packages instead. No Qt import here.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

#: The shared libraries libqxcb.so (Qt 6) loads, and the Debian/Ubuntu package of each (from ``ldd`` on the
#: plugin and ``dpkg -S``, Debian 12).
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}


def _loads(name: str) -> bool:
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def uses_xcb(environ: dict[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether Qt will pick its xcb plugin: Linux with an X display and no other platform asked for."""
    env = os.environ if environ is None else environ
    if (platform or sys.platform) != "linux":
        return False
    asked = env.get("QT_QPA_PLATFORM", "")
    if asked:
        return asked.split(":")[0].split(";")[0] == "xcb"
    return bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")


def missing_packages(loads: Callable[[str], bool] = _loads) -> list[str]:
    """Packages of the xcb plugin's libraries that cannot be loaded, in install order."""
    return [package for library, package in XCB_LIBRARIES.items() if not loads(library)]


def install_hint(packages: list[str]) -> str:
    """What to tell a user whose system lacks ``packages``."""
    return ("Attribute Studio cannot open its window: Qt's X11 (xcb) platform plugin needs system libraries that "
            f"are missing ({', '.join(packages)}). On Debian or Ubuntu install them with\n"
            f"    sudo apt-get install {' '.join(packages)}\n"
            "and start the app again (README, Set-up). On other systems install the same libraries under their "
            "names there.")


def check_platform(environ: dict[str, str] | None = None, loads: Callable[[str], bool] = _loads) -> str:
    """'' when Qt can start here (or will not use xcb); else the hint to print."""
    if not uses_xcb(environ):
        return ""
    missing = missing_packages(loads)
    return install_hint(missing) if missing else ""
