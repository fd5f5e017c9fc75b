// The drive dashboard: live pushes from /dashboard, and replay of a recording.
"use strict";
const $ = (id) => document.getElementById(id);
const HISTORY_S = 60;
const history = [];  // {t, steering, throttle, speed}
const fmt = (v, d = 3) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(d));

// Draw a frame with the steering sent: a wheel-like arc from the bottom centre,
// bent by the command (+1 = full right), and the value in the corner.
function drawFrame(canvas, img, steering) {
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  if (steering === undefined || steering === null) return;
  const w = canvas.width, h = canvas.height;
  const angle = steering * 25 * Math.PI / 180 * 2;  // 25 degrees full lock, exaggerated x2
  ctx.lineWidth = 4; ctx.strokeStyle = "#ffb000";
  ctx.beginPath(); ctx.moveTo(w / 2, h);
  ctx.lineTo(w / 2 + Math.sin(angle) * h * 0.6, h - Math.cos(angle) * h * 0.6); ctx.stroke();
  ctx.fillStyle = "rgba(0,0,0,.6)"; ctx.fillRect(4, 4, 120, 22);
  ctx.fillStyle = "#ffb000"; ctx.font = "bold 15px system-ui"; ctx.fillText("steer " + fmt(steering), 10, 20);
}

function drawChart(canvas, rows, tKey, t0, t1, cursor) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = "#38414d"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(0, h / 2); ctx.lineTo(w, h / 2); ctx.stroke();
  const x = (t) => ((t - t0) / Math.max(t1 - t0, 1e-6)) * w;
  const y = (v) => h / 2 - Math.max(-1, Math.min(1, v)) * (h / 2 - 4);
  for (const [key, colour, scale] of [["steering", "#ffb000", 1], ["throttle", "#4fc3f7", 1], ["speed", "#8bc34a", 1 / 30]]) {
    ctx.strokeStyle = colour; ctx.lineWidth = 2; ctx.beginPath();
    let started = false;
    for (const r of rows) {
      if (r[key] === undefined || r[key] === null) continue;
      const px = x(r[tKey]), py = y(r[key] * scale);
      if (started) ctx.lineTo(px, py); else { ctx.moveTo(px, py); started = true; }
    }
    ctx.stroke();
  }
  if (cursor !== undefined) {
    ctx.strokeStyle = "#fff"; ctx.beginPath(); ctx.moveTo(x(cursor), 0); ctx.lineTo(x(cursor), h); ctx.stroke();
  }
}

// ------------------------------------------------------------------ live
const frameImg = new Image();
let lastSteering = null;
frameImg.onload = () => drawFrame($("frame"), frameImg, lastSteering);

function showModel(m) {
  const rows = [["arch", m.arch], ["parameters", m.params ? Number(m.params).toLocaleString() : null],
    ["file", m.source], ["runtime", m.runtime], ["validation MSE", m.val_mse !== null && m.val_mse !== undefined ? Number(m.val_mse).toPrecision(4) : "unknown"]];
  $("model").innerHTML = "";
  for (const [k, v] of rows) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v === null || v === undefined ? "–" : v;
    $("model").append(dt, dd);
  }
}

function showState(s) {
  if (s.image) { lastSteering = s.steering; frameImg.src = s.image; $("frame").dataset.seq = s.frame_seq; }
  $("steering").textContent = fmt(s.steering);
  $("throttle").textContent = fmt(s.throttle);
  $("speed").textContent = fmt(s.speed, 1);
  for (const stage of ["decode", "inference", "total"]) {
    const l = (s.latency_ms || {})[stage] || {};
    $(stage + "-p50").textContent = fmt(l.p50, 2);
    $(stage + "-p99").textContent = fmt(l.p99, 2);
  }
  $("fps").textContent = fmt(s.fps, 1);
  $("simulators").textContent = s.simulators && s.simulators.length ? s.simulators.length + " (" + s.simulators.join(", ") + ")" : "none";
  $("browsers").textContent = s.browsers;
  $("frames").textContent = s.frames;
  $("bad").textContent = s.bad_frames;
  $("manual").textContent = s.manual_frames;
  showTrack(s.track);
  if (s.steering !== undefined) history.push({ t: s.t, steering: s.steering, throttle: s.throttle, speed: s.speed });
  while (history.length && history[0].t < s.t - HISTORY_S) history.shift();
  drawChart($("chart"), history, "t", s.t - HISTORY_S, s.t);
}

// Extended telemetry of a research build (drive.extras); absent with the stock simulator.
function showTrack(t) {
  $("track-card").classList.toggle("hidden", !t);
  if (!t) return;
  const text = (v) => (v === null || v === undefined ? "–" : String(v));
  $("cte").textContent = fmt(t.cte);
  $("cte-max").textContent = fmt(t.max_abs_cte_lap);
  $("lap").textContent = text(t.lap);
  $("sector").textContent = text(t.sector);
  $("obes").textContent = text(t.obes);
  $("crashes").textContent = text(t.crashes);
}

const socket = miniSocket("/dashboard");
socket.on("connect", () => { $("conn").textContent = "live"; $("conn").className = "badge on"; });
socket.on("disconnect", () => { $("conn").textContent = "disconnected"; $("conn").className = "badge off"; });
socket.on("hello", (h) => { showModel(h.model || {}); history.length = 0; history.push(...(h.history || [])); });
socket.on("state", showState);

// ------------------------------------------------------------------ replay
let replay = [];
const replayImg = new Image();
function showReplay(i) {
  const r = replay[i];
  if (!r) return;
  replayImg.onload = () => drawFrame($("replay-frame"), replayImg, r.steering);
  replayImg.src = "/replay/frames/" + encodeURIComponent(r.image);
  $("replay-info").textContent = `frame ${i + 1}/${replay.length} · ${r.time} · steering ${fmt(r.steering)} · throttle ${fmt(r.throttle)} · speed ${fmt(r.speed, 1)} mph`;
  drawChart($("replay-chart"), replay, "i", 0, replay.length - 1, i);
}
async function loadReplay() {
  const res = await fetch("/replay/log");
  const body = await res.json();
  if (body.error) { $("replay-info").textContent = body.error; return; }
  if (!body.folder) return;
  replay = body.frames.map((r, i) => ({ ...r, i }));
  $("replay-folder").textContent = body.folder + " · " + replay.length + " frames";
  $("scrub").max = Math.max(replay.length - 1, 0);
  if (replay.length) showReplay(0); else $("replay-info").textContent = "The recording has no frames.";
}
$("scrub").addEventListener("input", (e) => showReplay(Number(e.target.value)));
for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => {
    for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t === tab);
    $("view-live").classList.toggle("hidden", tab.dataset.view !== "live");
    $("view-replay").classList.toggle("hidden", tab.dataset.view !== "replay");
    if (tab.dataset.view === "replay" && !replay.length) loadReplay();
  });
}
