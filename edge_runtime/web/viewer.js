// sonomap live viewer: MJPEG <img> + stats polled from /stats.json once a second.
// The access token (when the server needs one) comes from this page's ?token= and is
// passed on to the stream and stats URLs; it never leaves this origin (no-referrer).
"use strict";
(function () {
  const token = new URLSearchParams(window.location.search).get("token");
  const withToken = (path) => (token ? path + "?token=" + encodeURIComponent(token) : path);
  const set = (id, text) => { document.getElementById(id).textContent = text; };
  const fmt = (v) => (typeof v === "number" && isFinite(v) ? v.toFixed(1) : "-");

  const video = document.getElementById("video");
  video.src = withToken("stream.mjpg");
  // A dropped stream (service restart) is retried rather than left frozen.
  video.addEventListener("error", () => setTimeout(() => { video.src = withToken("stream.mjpg") + "#" + Date.now(); }, 1000));

  async function poll() {
    try {
      const r = await fetch(withToken("stats.json"), { cache: "no-store" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      const s = await r.json();
      set("fps", fmt(s.fps));
      set("lat-e2e", fmt(s.latency_ms.end_to_end));
      set("lat-backend", fmt(s.latency_ms.backend));
      set("backend", s.info.backend || "-");
      set("frames", String(s.frames));
      set("drops", String(s.counters.frames_dropped || 0));
      const errs = Object.values(s.events).concat(Object.entries(s.counters)
        .filter(([k]) => k.startsWith("errors")).map(([, v]) => v));
      set("errors", String(errs.reduce((a, b) => a + b, 0)));
      set("banner", s.no_signal ? "NO SIGNAL: waiting for the capture device" : (s.banner || ""));
      const h = document.getElementById("health");
      h.textContent = s.healthy ? "ok" : "no frames";
      h.className = s.healthy ? "ok" : "bad";
      document.body.dataset.frames = String(s.frames);
    } catch (e) {
      const h = document.getElementById("health");
      h.textContent = "unreachable (" + e.message + ")";
      h.className = "bad";
    }
  }
  poll();
  setInterval(poll, 1000);
})();
