"""Driving an explorer (``Explorer.view``, CSS class ``scoretutor-explorer``) in the browser."""

from __future__ import annotations

UPDATE_TIMEOUT_MS = 30_000

# Install the probes on one explorer: key-down time and image-load times (page clock, ms).
PROBE_JS = """(root) => {
  const img = root.querySelector('img');
  window.__keyT = null; window.__loads = [];
  if (!root.__probed) {
    root.addEventListener('keydown', () => { window.__keyT = performance.now(); }, true);
    img.addEventListener('load', () => window.__loads.push({t: performance.now(), src: img.src}));
    root.__probed = true;
  }
}"""

STATE_JS = """async (root) => {
  const img = root.querySelector('img');
  const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  const rect = img.getBoundingClientRect();
  return {hash: Array.from(digest).map(b => b.toString(16).padStart(2, '0')).join(''), src: img.src,
          natural: [img.naturalWidth, img.naturalHeight], shown: [rect.width, rect.height],
          readouts: Array.from(root.querySelectorAll('.widget-readout')).map(e => e.value ?? e.textContent),
          status: root.querySelector('.widget-html') ? root.querySelector('.widget-html').innerText : ''};
}"""




def probe(page, root) -> None:
    """Install the key-press and image-load probes on one explorer (an element handle)."""
    page.evaluate(PROBE_JS, root)


def press(page, root, handle, key: str) -> tuple[float, dict]:
    """Press ``key`` on a slider handle; wait for the next image to load. Returns (ms from key press
    to image loaded, the explorer's state afterwards)."""
    page.evaluate("() => { window.__keyT = null; window.__loads = []; }")
    handle.focus()
    handle.press(key)
    page.wait_for_function("window.__keyT !== null && window.__loads.some(e => e.t > window.__keyT)",
                           timeout=UPDATE_TIMEOUT_MS)
    ms = page.evaluate("window.__loads.find(e => e.t > window.__keyT).t - window.__keyT")
    return ms, page.evaluate(STATE_JS, root)


def assert_pixel_size(state: dict, where: str) -> None:
    """The image is shown at its own pixel size (not stretched or squeezed by the layout)."""
    (nw, nh), (w, h) = state["natural"], state["shown"]
    assert nw > 0 and abs(w - nw) <= 1 and abs(h - nh) <= 1, \
        f"{where}: image shown at {w:.0f}×{h:.0f} px, its pixel size is {nw}×{nh}"
