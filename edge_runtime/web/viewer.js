// sonomap live viewer: MJPEG <img> + stats polled from /stats.json once a second.
// Access (when the server needs a token) rides on the HttpOnly session cookie the login page
// set: the browser sends it with the stream and stats requests; no token in any URL.
"use strict";
(function () {
  const set = (id, text) => { document.getElementById(id).textContent = text; };
  const fmt = (v) => (typeof v === "number" && isFinite(v) ? v.toFixed(1) : "-");

  const video = document.getElementById("video");
  video.src = "stream.mjpg";
  // A dropped stream (service restart) is retried rather than left frozen.
  video.addEventListener("error", () => setTimeout(() => { video.src = "stream.mjpg#" + Date.now(); }, 1000));

  async function poll() {
    try {
      const r = await fetch("stats.json", { cache: "no-store", credentials: "same-origin" });
      if (r.status === 401) { window.location.reload(); return; }  // session gone: back to the login page
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
      const ai = s.ai || {};
      const badge = document.getElementById("ai");
      badge.textContent = ai.state ? "AI " + ai.state + (ai.detail ? " " + ai.detail : "") : "AI ?";
      badge.className = ai.state || "";
      const framesFlow = !s.no_signal && typeof s.frame_age_s === "number" && s.frame_age_s < 2;
      const h = document.getElementById("health");
      h.textContent = s.healthy ? "ok" : (framesFlow && ai.state ? "AI " + ai.state.toLowerCase() : "no frames");
      h.className = s.healthy ? "ok" : "bad";
      document.body.dataset.frames = String(s.frames);
    } catch (e) {
      const h = document.getElementById("health");
      h.textContent = "unreachable (" + e.message + ")";
      h.className = "bad";
      const badge = document.getElementById("ai");
      badge.textContent = "AI ?";  // never leave a stale "AI ON" up
      badge.className = "";
    }
  }
  // The session's study ID (a pseudonym) for the cases captured from now on: POST /study-id.
  const study = document.getElementById("study-id");
  const studyMsg = (text, ok) => {
    const m = document.getElementById("study-msg");
    m.textContent = text;
    m.className = ok ? "ok" : "bad";
  };
  async function loadStudy() {
    try {
      const r = await fetch("study-id", { cache: "no-store", credentials: "same-origin" });
      if (!r.ok) return;
      const s = await r.json();
      study.value = s.study_id || "";
      study.disabled = !s.capturing;
      if (!s.capturing) studyMsg("not capturing (start with --cases DIR)", false);
    } catch (e) { /* the stats poll reports an unreachable server */ }
  }
  document.getElementById("study").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await fetch("study-id", {
        method: "POST", body: study.value, credentials: "same-origin",
        headers: { "Content-Type": "text/plain; charset=utf-8" },
      });
      studyMsg((await r.text()).trim(), r.ok);
    } catch (e) {
      studyMsg("not set: " + e.message, false);
    }
  });
  loadStudy();
  poll();
  setInterval(poll, 1000);
})();
