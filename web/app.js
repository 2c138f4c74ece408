// reelfarm dashboard: a read-only view of the coordinator's JSON API, polled every second.
// Routes (URL fragment): #/ jobs, #/workers, #/jobs/ID, #/jobs/ID/chunks/N (a chunk opened).
// No build step and no dependencies: plain DOM, served by the coordinator itself.
"use strict";

const POLL_MS = 1000;
const STATES = ["queued", "retrying", "running", "verifying", "done", "failed"];
const params = new URLSearchParams(location.search);
const token = params.get("token") || "";
const app = document.getElementById("app");
let route = parse(location.hash);
let timer = null;
let view = null;        // state of the mounted view (to update it in place)
let frameSel = null;    // frame chosen in the comparison, per job

function withToken(url) {
  if (!token) return url;
  return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
}
async function api(path) {
  const r = await fetch(withToken(path), { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": " + r.status + " " + (await r.text()).trim());
  return r.json();
}
function parse(hash) {
  const p = hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  if (p[0] === "jobs" && p[1]) return { page: "job", job: decodeURIComponent(p[1]), chunk: p[2] === "chunks" && p[3] !== undefined ? Number(p[3]) : null };
  if (p[0] === "workers") return { page: "workers" };
  return { page: "jobs" };
}
function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function el(html) { const t = document.createElement("template"); t.innerHTML = html.trim(); return t.content.firstChild; }
function fmtBytes(n) { if (!n) return "—"; const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; while (n >= 1024 && i < 4) { n /= 1024; i++; } return n.toFixed(i ? 1 : 0) + " " + u[i]; }
function fmtTime(ms) { return ms ? new Date(ms).toLocaleTimeString() : "—"; }
function fmtAgo(ms) { if (ms < 1500) return "now"; const s = ms / 1000; return s < 90 ? s.toFixed(0) + " s ago" : (s / 60).toFixed(0) + " min ago"; }
function pct(job) { return job.frames_total ? Math.min(100, 100 * job.frames_done / job.frames_total) : (job.chunks_total ? 100 * job.chunks_done / job.chunks_total : 0); }
function bar(job) {
  const n = job.chunks_total || 1, cs = job.chunk_states || {};
  const seg = k => `<span class="b-${k}" style="width:${(100 * (cs[k] || 0) / n).toFixed(2)}%"></span>`;
  return `<div class="bar" title="${esc(JSON.stringify(cs))}">${seg("done")}${seg("verifying")}${seg("running")}${seg("failed")}</div>`;
}
function badge(state) { return `<span class="badge ${esc(state)}">${esc(state)}</span>`; }

// ---- jobs list ----------------------------------------------------------------------------------
async function renderJobs() {
  const [jobs, workers] = await Promise.all([api("api/jobs"), api("api/workers")]);
  summary(jobs, workers);
  const list = jobs.jobs.slice().sort((a, b) => b.created_ms - a.created_ms);
  app.innerHTML = `<h1>Jobs</h1><p class="muted">${list.length} job(s) · click one to see its chunks</p>
    <div class="panel">${list.length ? `<table id="jobs"><thead><tr><th>Job</th><th>State</th><th>Progress</th>
    <th>Chunks</th><th>Frames/s</th><th>Submitted</th></tr></thead><tbody>${list.map(j => `
    <tr class="job-row" data-job="${esc(j.id)}" data-state="${esc(j.state)}"><td><b>${esc(j.name)}</b><div class="muted">${esc(j.id)}</div></td>
    <td>${badge(j.state)}</td><td>${bar(j)}<div class="pct">${pct(j).toFixed(1)}% · ${j.frames_done}/${j.frames_total} frames</div></td>
    <td>${j.chunks_done}/${j.chunks_total}</td><td>${j.fps.toFixed(1)}</td><td>${fmtTime(j.created_ms)}</td></tr>`).join("")}
    </tbody></table>` : `<div class="empty">No jobs yet. Submit one with <code>reelfarm submit job.yaml</code>.</div>`}</div>
    <h2>Workers</h2><div class="panel">${workersTable(workers.workers)}</div>`;
  app.querySelectorAll("tr.job-row").forEach(tr => tr.onclick = () => { location.hash = "#/jobs/" + encodeURIComponent(tr.dataset.job); });
}
function workersTable(ws) {
  if (!ws.length) return `<div class="empty">No worker has connected yet.</div>`;
  return `<table id="workers"><thead><tr><th>Worker</th><th>State</th><th>GPU</th><th>VRAM</th><th>Slots</th>
    <th>Current chunk</th><th>Frames/s</th><th>Done / failed</th><th>Last seen</th></tr></thead><tbody>${ws.map(w => {
      const st = !w.live ? "gone" : w.quarantined ? "quarantined" : "live";
      const cur = w.current ? `<a href="#/jobs/${encodeURIComponent(w.current.job)}/chunks/${w.current.chunk}">${esc(w.current.job.slice(0, 8))} · chunk ${w.current.chunk}</a> <span class="muted">${w.current.frames_done}/${w.current.frames}</span>` : `<span class="muted">idle</span>`;
      return `<tr data-worker="${esc(w.name)}"><td><b>${esc(w.name)}</b></td><td>${badge(st)}</td><td>${esc(w.gpu_model || "CPU")}</td>
      <td>${fmtBytes(w.vram_bytes)}</td><td>${w.busy}/${w.slots}</td><td>${cur}</td><td>${w.fps.toFixed(1)}</td>
      <td>${w.chunks_done} / ${w.chunks_failed}</td><td>${fmtAgo(w.last_seen_ms_ago)}</td></tr>`;
    }).join("")}</tbody></table>`;
}
function summary(jobs, workers) {
  const live = workers.workers.filter(w => w.live).length;
  const running = jobs.jobs.filter(j => j.state === "running").length;
  const fps = jobs.jobs.reduce((a, j) => a + j.fps, 0);
  document.getElementById("farm-summary").innerHTML = `<b>${running}</b> running job(s) · <b>${live}</b> live worker(s) · <b>${fps.toFixed(1)}</b> frames/s`;
}
async function renderWorkers() {
  const [jobs, workers] = await Promise.all([api("api/jobs"), api("api/workers")]);
  summary(jobs, workers);
  app.innerHTML = `<h1>Workers</h1><div class="panel">${workersTable(workers.workers)}</div>`;
}

// ---- one job ------------------------------------------------------------------------------------
function mountJob(job) {
  app.innerHTML = `<p><a href="#/">← all jobs</a></p>
  <div class="job-head"><div><h1 id="job-name"></h1><div class="muted" id="job-id"></div></div>
    <div class="stat"><div class="v" id="job-state"></div><div class="k">state</div></div>
    <div class="stat"><div class="v" id="job-pct"></div><div class="k">frames done</div></div>
    <div class="stat"><div class="v" id="job-chunks"></div><div class="k">chunks done</div></div>
    <div class="stat"><div class="v" id="job-fps"></div><div class="k">frames/s</div></div>
    <div style="flex:1;min-width:200px" id="job-bar"></div></div>
  <p class="err" id="job-msg"></p>
  <h2>Chunks</h2>
  <div class="legend">${STATES.map(s => `<span><i style="background:var(--${s})"></i>${s}</span>`).join("")}</div>
  <div class="grid" id="chunks"></div>
  <div id="chunk-detail"></div>
  <div class="cols"><div><h2>Source and result</h2><div class="panel" id="compare"></div></div>
  <div><h2>Events</h2><div class="panel events" id="events"></div><h2>Failed attempts</h2><div class="panel" id="failures"></div></div></div>`;
  view = { job: job.id, cells: new Map() };
}
function updateChunkCell(grid, c, jobId) {
  let cell = view.cells.get(c.index);
  if (!cell) {
    cell = el(`<div class="cell" data-index="${c.index}"><div class="prog"></div><div class="lbl"><span>#${c.index}</span><span class="w"></span></div></div>`);
    cell.onclick = () => { location.hash = `#/jobs/${encodeURIComponent(jobId)}/chunks/${c.index}`; };
    grid.appendChild(cell);
    view.cells.set(c.index, cell);
  }
  cell.className = `cell st-${c.state}` + (route.chunk === c.index ? " sel" : "");
  cell.dataset.state = c.state;
  cell.title = `chunk ${c.index} · frames ${c.frame_start}–${c.frame_end - 1} · ${c.state} · attempts ${c.attempts}`;
  cell.querySelector(".w").textContent = c.state === "running" ? `${c.fps.toFixed(0)} fps` : c.state;
  cell.querySelector(".prog").style.width = c.state === "running" && c.frames ? (100 * c.frames_done / c.frames).toFixed(1) + "%" : "0";
  if (c.thumb && !cell.querySelector("img")) {
    const img = el(`<img alt="chunk ${c.index}" loading="lazy">`);
    img.onload = () => { img.dataset.loaded = img.naturalWidth > 0 ? "1" : "0"; };
    img.onerror = () => { img.remove(); }; // tried again on the next poll
    img.src = withToken(`api/jobs/${encodeURIComponent(jobId)}/chunks/${c.index}/thumb.jpg`);
    cell.insertBefore(img, cell.firstChild);
  }
}
function renderDetail(job) {
  const box = document.getElementById("chunk-detail");
  if (route.chunk === null || !job.chunks[route.chunk]) { box.innerHTML = ""; box.dataset.chunk = ""; return; }
  const c = job.chunks[route.chunk];
  const key = `${c.index}:${c.state}:${c.attempts}:${c.frames_done}:${c.worker}`;
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  const hadImg = box.dataset.chunk === String(c.index) && box.querySelector("img.thumb");
  const imgSrc = withToken(`api/jobs/${encodeURIComponent(job.id)}/chunks/${c.index}/thumb.jpg`);
  box.dataset.chunk = c.index;
  const kv = `<div class="kv"><div>state</div><div>${badge(c.state)}</div><div>frames</div><div>${c.frame_start}–${c.frame_end - 1} (${c.frames})</div>
    <div>progress</div><div>${c.frames_done}/${c.frames}</div><div>attempts</div><div>${c.attempts}</div>
    <div>worker</div><div>${esc(c.worker || "—")}</div><div>frames/s</div><div>${c.fps.toFixed(1)}</div>
    <div>failed on</div><div>${esc(c.failed_on || "—")}</div></div>`;
  const thumb = c.thumb ? `<img id="chunk-thumb" class="thumb" alt="middle frame of chunk ${c.index}">` : `<div class="thumb empty">no result yet</div>`;
  if (hadImg && c.thumb) { box.querySelector(".kv").outerHTML = kv; return; }
  box.innerHTML = `<h2>Chunk ${c.index}</h2><div class="panel detail" id="chunk-panel" data-chunk="${c.index}">${thumb}${kv}</div>`;
  const img = box.querySelector("#chunk-thumb");
  if (img) { img.onload = () => { img.dataset.loaded = img.naturalWidth > 0 ? "1" : "0"; }; img.src = imgSrc; }
  if (frameSel === null || frameSel.job !== job.id) frameSel = { job: job.id, frame: Math.floor((c.frame_start + c.frame_end) / 2) };
  else frameSel.frame = Math.floor((c.frame_start + c.frame_end) / 2);
  renderCompare(job, true);
}
function renderCompare(job, force) {
  const box = document.getElementById("compare");
  const total = Math.max(1, job.frames_total);
  if (frameSel === null || frameSel.job !== job.id) frameSel = { job: job.id, frame: 0 };
  const f = Math.min(frameSel.frame, total - 1);
  // Shown again when the chunk holding the frame changes state (its result appears).
  const holder = job.chunks.find(c => f >= c.frame_start && f < c.frame_end);
  const key = `${job.id}:${f}:${holder ? holder.state : ""}:${job.state}`;
  if (!force && box.dataset.key === key) return;
  box.dataset.key = key;
  const base = `api/jobs/${encodeURIComponent(job.id)}/frames/${f}.jpg`;
  box.innerHTML = `<div class="controls"><span class="muted">frame</span><input type="number" id="frame-n" min="0" max="${total - 1}" value="${f}">
    <input type="range" id="frame-r" min="0" max="${total - 1}" value="${f}"><button id="frame-go">Show</button></div>
    <div class="compare"><figure><img id="frame-src" alt="source frame ${f}" src="${withToken(base + "?from=source")}"><figcaption>source · frame ${f}</figcaption></figure>
    <figure><img id="frame-res" alt="result frame ${f}" src="${withToken(base + "?from=result")}" onerror="this.alt='no result for this frame yet'"><figcaption>result · frame ${f}</figcaption></figure></div>`;
  const n = box.querySelector("#frame-n"), r = box.querySelector("#frame-r");
  r.oninput = () => { n.value = r.value; };
  const go = () => { frameSel.frame = Math.max(0, Math.min(total - 1, Number(n.value) || 0)); renderCompare(job, true); };
  box.querySelector("#frame-go").onclick = go;
  r.onchange = go;
  n.onkeydown = e => { if (e.key === "Enter") go(); };
}
async function renderJob() {
  const id = route.job;
  const [job, events] = await Promise.all([api("api/jobs/" + encodeURIComponent(id)), api("api/jobs/" + encodeURIComponent(id) + "/events")]);
  if (!view || view.job !== job.id) mountJob(job);
  document.getElementById("job-name").textContent = job.name;
  document.getElementById("job-id").textContent = job.id + " · " + (job.input || "") + " → " + (job.output || "");
  document.getElementById("job-state").innerHTML = badge(job.state);
  document.getElementById("job-pct").textContent = pct(job).toFixed(1) + "%";
  document.getElementById("job-chunks").textContent = `${job.chunks_done}/${job.chunks_total}`;
  document.getElementById("job-fps").textContent = job.fps.toFixed(1);
  document.getElementById("job-bar").innerHTML = bar(job);
  document.getElementById("job-msg").textContent = job.message || "";
  const grid = document.getElementById("chunks");
  job.chunks.forEach(c => updateChunkCell(grid, c, job.id));
  renderDetail(job);
  renderCompare(job, false);
  const evBox = document.getElementById("events");
  const atBottom = evBox.scrollTop + evBox.clientHeight >= evBox.scrollHeight - 4;
  evBox.innerHTML = events.events.length ? events.events.map(e => `<div class="ev ${esc(e.level)}"><span class="t">${fmtTime(e.ts_ms)}</span><span class="m">${esc(e.message)}</span></div>`).join("") : `<div class="muted">No events.</div>`;
  if (atBottom) evBox.scrollTop = evBox.scrollHeight;
  const failed = events.attempts.filter(a => a.outcome !== "done" && a.outcome !== "running");
  document.getElementById("failures").innerHTML = failed.length ? `<table id="attempts"><thead><tr><th>Chunk</th><th>Attempt</th><th>Worker</th><th>Outcome</th><th>Reason</th></tr></thead><tbody>${failed.map(a => `
    <tr><td><a href="#/jobs/${encodeURIComponent(job.id)}/chunks/${a.chunk}">${a.chunk}</a></td><td>${a.attempt}</td><td>${esc(a.worker)}</td><td>${badge(a.outcome === "timed out" ? "failed" : a.outcome)} ${esc(a.outcome)}</td><td>${esc(a.reason)}</td></tr>`).join("")}</tbody></table>` : `<div class="muted">No failed attempts.</div>`;
  const [jobs, workers] = await Promise.all([api("api/jobs"), api("api/workers")]);
  summary(jobs, workers);
}

// ---- loop ---------------------------------------------------------------------------------------
async function tick() {
  clearTimeout(timer);
  const live = document.getElementById("live");
  try {
    if (route.page === "job") await renderJob();
    else { view = null; if (route.page === "workers") await renderWorkers(); else await renderJobs(); }
    live.classList.remove("stale"); live.textContent = "● live";
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.ticks = String(Number(document.body.dataset.ticks || 0) + 1);
  } catch (e) {
    live.classList.add("stale"); live.textContent = "● offline";
    if (route.page === "job" && String(e.message).includes("404")) app.innerHTML = `<p><a href="#/">← all jobs</a></p><div class="empty err">${esc(e.message)}</div>`;
  }
  timer = setTimeout(tick, POLL_MS);
}
window.addEventListener("hashchange", () => {
  const next = parse(location.hash);
  if (next.page !== "job" || !view || view.job !== next.job) view = null;
  route = next;
  tick();
});
document.querySelectorAll("a[data-raw]").forEach(a => a.href = withToken(a.getAttribute("href")));
tick();
