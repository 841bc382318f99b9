// LongLive Studio: the page `longlive serve` serves. Plain ES module, no build step, no external fetch.
//
// Parts: the live video (WS /api/video: fragmented MP4 into Media Source Extensions), the prompt box and its
// controls (POST /api/session/prompt, pause/resume/stop), the session state and timeline (WS /api/events,
// with GET /api/session as a fallback), the new-session form, and the storyboard tab (POST /api/validate,
// POST /api/render). The token, when the server has one, travels in a cookie the server set: this page never
// sees it.
//
// window.studioMetrics records, for tests and benchmarks, the prompt-to-screen latency of each switch (wall
// time from the POST being sent to the first frame at or after its video time shown by the <video>) and,
// for each block, the delay from its `block_done` event arriving to its first frame being shown. All times
// are performance.now() milliseconds.

const $ = (id) => document.getElementById(id);

const LIVE_LAG_S = 0.5; // jump to the live edge when playback lags the end of the buffer by more than this
const KEEP_BEHIND_S = 10; // buffer kept behind the playhead; older media is removed
const TRIM_AFTER_S = 30; // trim once this much lies behind the playhead
const MAX_QUEUE = 400; // fragments waiting to be appended; beyond, the stream is restarted at the next init
const FRAME_LOG = 2000; // frames remembered for the latency matching
const MAX_RECORDS = 1000; // blocks remembered in studioMetrics.blocks

const metrics = {
  switches: [], // {text, session, sentAt, status, block, atS, shownAt, latencyS, serverLatencyS}
  blocks: [], // {session, block, startS, endS, doneAt, shownAt, delayS}
  frames: 0, // frames the <video> presented
  video: { inits: 0, appended: 0, bytes: 0, jumps: 0, trims: 0, errors: [], unsupported: null },
};
window.studioMetrics = metrics;

const state = {
  health: null,
  session: null,
  videoSession: null, // the session whose init segment the player holds
  frameLog: [], // {t: media seconds, at: performance.now(), session}
  lastFramesDone: new Map(), // session id -> video frames done after the last block_done seen
  timelineKey: "",
  render: null,
  eventsOpen: false,
};

// ------------------------------------------------------------------------------------------ helpers
function fmtS(value, digits = 2) {
  return value === null || value === undefined || Number.isNaN(value) ? "–" : `${value.toFixed(digits)} s`;
}

function showMessage(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = kind === "info" ? "message info" : "message";
  box.hidden = false;
}

function clearMessage() {
  $("message").hidden = true;
}

const AUTH_MESSAGE =
  "This server needs its token. Open the address `longlive serve` printed (the one ending in ?token=…) " +
  "once in this browser: it sets a cookie, and the page works from then on.";

async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    return { status: 0, ok: false, data: { error: `The server cannot be reached (${err.message}).` } };
  }
  let data = null;
  if ((response.headers.get("Content-Type") || "").includes("json")) {
    data = await response.json().catch(() => null);
  }
  if (response.status === 401) {
    showMessage(AUTH_MESSAGE);
  }
  return { status: response.status, ok: response.ok, data };
}

function errorText(res) {
  if (res.status === 401) return AUTH_MESSAGE;
  const data = res.data || {};
  const error = data.error || `The server answered HTTP ${res.status}.`;
  return data.field ? `${error} (field: ${data.field})` : error;
}

function wsUrl(path) {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

// A WebSocket that reconnects with a growing delay (0.5 s doubling to 8 s; back to 0.5 s once a message came).
class Socket {
  constructor(path, { binary = false, onMessage, onOpen, onClose }) {
    Object.assign(this, { path, binary, onMessage, onOpen, onClose });
    this.delay = 500;
    this.open();
  }

  open() {
    const ws = new WebSocket(wsUrl(this.path));
    if (this.binary) ws.binaryType = "arraybuffer";
    ws.onopen = () => this.onOpen && this.onOpen();
    ws.onmessage = (event) => {
      this.delay = 500;
      this.onMessage(event.data);
    };
    ws.onclose = () => {
      if (this.onClose) this.onClose();
      setTimeout(() => this.open(), this.delay);
      this.delay = Math.min(this.delay * 2, 8000);
    };
    this.ws = ws;
  }
}

// ------------------------------------------------------------------------------------------ latency
function halfFrame() {
  const fps = (state.session && state.session.video_fps) || (state.health && state.health.fps) || 16;
  return 0.5 / fps;
}

function frameMatchesSwitch(frame, record) {
  return frame.session === record.session && frame.at >= record.sentAt && frame.t >= record.atS - halfFrame();
}

function frameMatchesBlock(frame, record) {
  const eps = halfFrame();
  return frame.session === record.session && frame.t >= record.startS - eps && frame.t < record.endS - eps;
}

function resolveFromLog(record, matches, done) {
  const frame = state.frameLog.find((f) => matches(f, record));
  if (frame) done(record, frame);
}

function switchShown(record, frame) {
  record.shownAt = frame.at;
  record.latencyS = (frame.at - record.sentAt) / 1000;
  if (state.session && state.session.id === record.session) renderTimeline(state.session);
}

function blockShown(record, frame) {
  record.shownAt = frame.at;
  record.delayS = (frame.at - record.doneAt) / 1000;
}

function frameShown(mediaTime, at) {
  metrics.frames += 1;
  const frame = { t: mediaTime, at, session: state.videoSession };
  state.frameLog.push(frame);
  if (state.frameLog.length > FRAME_LOG) state.frameLog.splice(0, state.frameLog.length - FRAME_LOG);
  for (const record of metrics.switches) {
    if (record.shownAt === null && record.atS !== null && frameMatchesSwitch(frame, record)) {
      switchShown(record, frame);
    }
  }
  for (let i = metrics.blocks.length - 1; i >= 0 && i >= metrics.blocks.length - 50; i -= 1) {
    const record = metrics.blocks[i];
    if (record.shownAt === null && frameMatchesBlock(frame, record)) blockShown(record, frame);
  }
  $("video-time").textContent = fmtS(mediaTime, 1);
}

function noteSwitchPlace(record, block, atS) {
  record.block = block;
  record.atS = atS;
  resolveFromLog(record, frameMatchesSwitch, switchShown);
}

// A switch the server reports (a `prompt_switched` event or the session's prompts list) is matched to the
// oldest unplaced POST of the same text in the same session.
function placeSwitch(session, text, block, atS, serverLatencyS) {
  const placed = metrics.switches.find((r) => r.session === session && r.block === block);
  if (placed) {
    if (serverLatencyS !== undefined && serverLatencyS !== null) placed.serverLatencyS = serverLatencyS;
    return;
  }
  const record = metrics.switches.find(
    (r) => r.session === session && r.block === null && r.status === 202 && r.text === text,
  );
  if (!record) return;
  if (serverLatencyS !== undefined) record.serverLatencyS = serverLatencyS;
  noteSwitchPlace(record, block, atS);
}

function noteBlockDone(event, at) {
  const session = state.session && state.session.id;
  if (!session) return;
  const fps = event.fps || state.session.video_fps;
  const before = event.block === 0 ? 0 : state.lastFramesDone.get(session);
  state.lastFramesDone.set(session, event.video_frames_done);
  if (before === undefined || !fps) return; // the previous block's end is not known: no start time
  const record = {
    session,
    block: event.block,
    startS: before / fps,
    endS: event.video_frames_done / fps,
    doneAt: at,
    shownAt: null,
    delayS: null,
  };
  metrics.blocks.push(record);
  if (metrics.blocks.length > MAX_RECORDS) metrics.blocks.splice(0, metrics.blocks.length - MAX_RECORDS);
  resolveFromLog(record, frameMatchesBlock, blockShown);
}

// ------------------------------------------------------------------------------------------ live video
class LivePlayer {
  constructor(video) {
    this.video = video;
    this.queue = [];
    this.mediaSource = null;
    this.sourceBuffer = null;
    this.fragmentS = 0; // media seconds the last append added
    this.frameToken = 0;
    this.socket = new Socket("/api/video", {
      binary: true,
      onMessage: (data) => this.onMessage(data),
      onClose: () => this.overlay("Video connection lost; reconnecting…"),
    });
    setInterval(() => this.keepLive(), 250);
    this.watchFrames();
  }

  overlay(text) {
    $("video-message").textContent = text;
  }

  onMessage(data) {
    if (typeof data !== "string") {
      this.enqueue(data);
      return;
    }
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message.type === "init") this.reset(message);
    else if (message.type === "idle") this.overlay("No session is running: start one on the right.");
  }

  // A new session (or a reconnection): a fresh MediaSource; the init segment is the next binary message.
  reset(init) {
    metrics.video.inits += 1;
    this.queue = [];
    this.sourceBuffer = null;
    this.mediaSource = null;
    if (!("MediaSource" in window) || !MediaSource.isTypeSupported(init.mime)) {
      metrics.video.unsupported = init.mime;
      this.overlay(
        `This browser cannot play ${init.mime} through Media Source Extensions, so the live video cannot be ` +
          "shown here (the recording can still be downloaded). Chromium and Firefox can.",
      );
      return;
    }
    state.videoSession = init.session;
    this.overlay("");
    const mediaSource = new MediaSource();
    const url = URL.createObjectURL(mediaSource);
    mediaSource.addEventListener(
      "sourceopen",
      () => {
        URL.revokeObjectURL(url);
        if (this.mediaSource !== mediaSource) return;
        const buffer = mediaSource.addSourceBuffer(init.mime);
        buffer.mode = "segments";
        buffer.addEventListener("updateend", () => this.pump());
        this.sourceBuffer = buffer;
        this.pump();
      },
      { once: true },
    );
    this.mediaSource = mediaSource;
    this.video.src = url;
    this.watchFrames();
    this.video.play().catch(() => {});
  }

  enqueue(data) {
    if (!this.mediaSource) return; // before the first init message: nothing can use it
    if (this.queue.length >= MAX_QUEUE) {
      // Far behind (a hidden tab): drop the backlog; the server's next keyframe fragment will not decode
      // without its predecessors, so reconnect, which restarts the stream at an init segment.
      metrics.video.errors.push("queue overflow: reconnecting");
      this.queue = [];
      this.mediaSource = null;
      this.socket.ws.close();
      return;
    }
    this.queue.push(data);
    this.pump();
  }

  pump() {
    const buffer = this.sourceBuffer;
    if (!buffer || buffer.updating || this.mediaSource.readyState !== "open") return;
    if (this.trim()) return; // the removal's updateend calls pump again
    const data = this.queue.shift();
    if (!data) return;
    const endBefore = this.bufferedEnd();
    try {
      buffer.appendBuffer(data);
      metrics.video.appended += 1;
      metrics.video.bytes += data.byteLength;
      buffer.addEventListener(
        "updateend",
        () => {
          if (endBefore !== null && this.bufferedEnd() !== null) this.fragmentS = this.bufferedEnd() - endBefore;
          this.keepLive();
        },
        { once: true },
      );
    } catch (err) {
      metrics.video.errors.push(`${err.name}: ${err.message}`);
      if (err.name === "QuotaExceededError") {
        this.queue.unshift(data);
        this.trim(true);
      } else {
        this.overlay(`The video stream could not be decoded (${err.message}); waiting for the next one.`);
        this.mediaSource = null;
        this.socket.ws.close();
      }
    }
  }

  bufferedEnd() {
    const ranges = this.video.buffered;
    return ranges.length ? ranges.end(ranges.length - 1) : null;
  }

  // Remove media well behind the playhead so memory stays bounded over a long session.
  trim(force = false) {
    const ranges = this.video.buffered;
    if (!ranges.length || !this.sourceBuffer) return false;
    const start = ranges.start(0);
    const now = this.video.currentTime;
    const keep = force ? 2 : KEEP_BEHIND_S;
    if (now - start <= (force ? keep : TRIM_AFTER_S)) return false;
    this.sourceBuffer.remove(start, now - keep);
    metrics.video.trims += 1;
    return true;
  }

  // Stay near the live edge: jump forward when playback lags the end of the buffer (or sits before it).
  keepLive() {
    const ranges = this.video.buffered;
    if (!ranges.length) return;
    const last = ranges.length - 1;
    const start = ranges.start(last);
    const end = ranges.end(last);
    const now = this.video.currentTime;
    const allowed = Math.max(LIVE_LAG_S, 1.5 * this.fragmentS);
    if (now < start || end - now > allowed) {
      this.video.currentTime = Math.max(start, end - Math.min(0.1, (end - start) / 2));
      metrics.video.jumps += 1;
    }
    if (this.video.paused && !this.video.ended) this.video.play().catch(() => {});
  }

  // Every presented frame goes to frameShown (requestVideoFrameCallback; `timeupdate` where it is missing).
  watchFrames() {
    const video = this.video;
    if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) {
      if (!this.timeupdate) {
        this.timeupdate = () => frameShown(video.currentTime, performance.now());
        video.addEventListener("timeupdate", this.timeupdate);
      }
      return;
    }
    this.frameToken += 1;
    const token = this.frameToken;
    const onFrame = (now, meta) => {
      if (token !== this.frameToken) return;
      frameShown(meta.mediaTime, now);
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }
}

// ------------------------------------------------------------------------------------------ session view
const ACTIVE = new Set(["starting", "running", "paused"]);

function setLink(id, href) {
  const link = $(id);
  if (href) {
    link.href = href;
    link.classList.remove("disabled");
    link.removeAttribute("aria-disabled");
  } else {
    link.removeAttribute("href");
    link.classList.add("disabled");
    link.setAttribute("aria-disabled", "true");
  }
}

function applySession(session) {
  if (!session || !session.id) return;
  state.session = session;
  const active = ACTIVE.has(session.state);
  const badge = $("state");
  badge.textContent = session.state;
  badge.dataset.state = session.state;
  const slow = session.state === "running" && session.fps > 0 && session.fps < session.video_fps;
  $("fps").textContent = `${(session.fps || 0).toFixed(1)} / ${session.video_fps} fps`;
  $("fps").className = slow ? "warn" : "";
  $("ahead").textContent = fmtS(session.ahead_s, 1);
  $("behind").textContent = fmtS(session.behind_s, 1);
  $("behind").className = session.behind_s > 0 ? "warn" : "";
  $("blocks").textContent = `${session.blocks_done} / ${session.num_blocks}`;
  $("viewers").textContent = String(session.viewers);
  $("prompt").disabled = !active;
  $("pause").disabled = session.state !== "running";
  $("resume").disabled = session.state !== "paused";
  $("stop").disabled = !active;
  $("start").disabled = active;
  $("pending").textContent = session.pending ? `waiting: ${session.pending}` : "";
  setLink("download-video", session.recording);
  setLink("download-storyboard", session.storyboard);
  if (session.state === "failed" && session.error) showMessage(`The session failed: ${session.error}`);
  for (const prompt of session.prompts || []) {
    placeSwitch(session.id, prompt.text, prompt.block, prompt.at_s, prompt.latency_s);
  }
  renderTimeline(session);
}

function switchMeta(prompt, record) {
  const parts = [`block <b>${Number(prompt.block)}</b>`, `<b>${Number(prompt.at_s).toFixed(2)}</b> s`];
  if (prompt.latency_s !== null && prompt.latency_s !== undefined) {
    parts.push(`switch <b>${prompt.latency_s.toFixed(2)}</b> s`);
  }
  if (record && record.latencyS !== null) parts.push(`on screen <b>${record.latencyS.toFixed(2)}</b> s`);
  if (prompt.transition_s > 0) parts.push(`${prompt.blend === "slerp" ? "slerp" : "linear"} ${Number(prompt.transition_s)} s`);
  if (prompt.cut) parts.push("cut");
  return parts.join(" · ");
}

function renderTimeline(session) {
  const prompts = session.prompts || [];
  const records = prompts.map((p) =>
    metrics.switches.find((r) => r.session === session.id && r.block === p.block),
  );
  const key = JSON.stringify([session.id, prompts, records.map((r) => r && r.latencyS)]);
  if (key === state.timelineKey) return;
  state.timelineKey = key;
  const list = $("timeline");
  list.replaceChildren();
  prompts.forEach((prompt, i) => {
    const item = document.createElement("li");
    item.className = "switch";
    item.dataset.block = String(prompt.block);
    let thumb;
    if (prompt.thumbnail) {
      thumb = document.createElement("img");
      thumb.src = prompt.thumbnail;
      thumb.alt = `block ${prompt.block}`;
    } else {
      thumb = document.createElement("div");
      thumb.className = "thumb";
    }
    const body = document.createElement("div");
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = prompt.text;
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.innerHTML = switchMeta(prompt, records[i]); // numbers and fixed words only; the text is textContent
    body.append(text, meta);
    item.append(thumb, body);
    list.append(item);
  });
  list.scrollTop = list.scrollHeight;
}

async function refreshSession() {
  const res = await api("/api/session");
  if (res.ok) applySession(res.data);
}

function onEvent(raw) {
  const at = performance.now();
  let event;
  try {
    event = JSON.parse(raw);
  } catch {
    return;
  }
  // A render job's progress (its pipeline events carry `render`: the job id) and its end (`render` event).
  if (event.render || event.event === "render") {
    onRenderUpdate(event);
    return;
  }
  const session = state.session && state.session.id;
  switch (event.event) {
    case "session":
      applySession(event);
      break;
    case "prompt_switched":
      if (session) placeSwitch(session, event.text, event.block, event.time_s);
      break;
    case "block_done":
      noteBlockDone(event, at);
      break;
    case "stream_behind":
      $("behind").className = "warn";
      break;
    default:
      break;
  }
}

// ------------------------------------------------------------------------------------------ controls
function transitionBody() {
  const body = {};
  const seconds = Number.parseFloat($("transition-s").value);
  if (seconds > 0) {
    body.transition = seconds;
    body.blend = $("blend").value;
  }
  if (!$("cut-label").hidden && $("cut").checked) body.cut = true;
  return body;
}

async function sendPrompt() {
  const box = $("prompt");
  const text = box.value.trim();
  if (!text) return;
  const record = {
    text,
    session: state.session && state.session.id,
    sentAt: performance.now(),
    status: null,
    block: null,
    atS: null,
    shownAt: null,
    latencyS: null,
    serverLatencyS: null,
  };
  metrics.switches.push(record);
  const res = await api("/api/session/prompt", { method: "POST", body: { text, ...transitionBody() } });
  record.status = res.status;
  if (res.status === 202) {
    box.value = "";
    $("cut").checked = false;
    clearMessage();
    if (state.session) applySession(state.session); // a switch reported before the answer is placed now
  } else {
    showMessage(errorText(res));
  }
}

async function control(action) {
  const res = await api(`/api/session/${action}`, { method: "POST" });
  if (res.ok) applySession(res.data);
  else showMessage(errorText(res));
}

function readFile(file, how) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    if (how === "dataURL") reader.readAsDataURL(file);
    else reader.readAsText(file);
  });
}

async function startSession(event) {
  event.preventDefault();
  const body = { prompt: $("new-prompt").value.trim() };
  const seed = $("seed").value.trim();
  if (seed !== "") body.seed = Number.parseInt(seed, 10);
  const resolution = $("resolution").value.trim();
  if (resolution) body.resolution = resolution;
  const duration = $("duration").value.trim();
  if (duration) body.duration = /^[0-9.]+$/.test(duration) ? `${duration}s` : duration;
  const file = $("image").files[0];
  if (file && !$("image-label").hidden) {
    if (file.size > 12 * 1024 * 1024) {
      showMessage(`The image is ${(file.size / 1048576).toFixed(1)} MiB; at most 12 MiB can be sent.`);
      return;
    }
    body.image = await readFile(file, "dataURL");
  }
  $("start").disabled = true;
  const res = await api("/api/session", { method: "POST", body });
  if (res.status === 201) {
    clearMessage();
    applySession(res.data);
  } else {
    $("start").disabled = false;
    showMessage(errorText(res));
  }
}

async function loadHealth(delay = 500) {
  const res = await api("/api/health");
  if (!res.ok) {
    if (res.status !== 401) showMessage(errorText(res));
    setTimeout(() => loadHealth(Math.min(delay * 2, 8000)), delay);
    return;
  }
  const health = res.data;
  state.health = health;
  clearMessage();
  $("model").textContent = `${health.model} · ${health.device} · ${health.native_resolution} @ ${health.fps} fps`;
  $("cut-label").hidden = !health.shots;
  $("image-label").hidden = !health.image;
  $("transition-s").disabled = !health.transitions;
  $("blend").replaceChildren(
    ...(health.blends || ["linear"]).map((name) => Object.assign(document.createElement("option"), { value: name, textContent: name })),
  );
  for (const id of ["prompt", "new-prompt"]) $(id).maxLength = health.max_prompt_chars;
  $("resolution").placeholder = health.native_resolution;
  $("duration").placeholder = `≤ ${health.max_duration_s}s`;
  $("limits").textContent =
    `resolution: multiples of ${health.resolution_multiple} px · up to ${health.max_duration_s} s · ` +
    `a prompt switches every ${health.block_seconds} s of video`;
}

// ------------------------------------------------------------------------------------------ storyboard tab
function showTab(name) {
  for (const tab of ["live", "storyboard"]) {
    const on = tab === name;
    $(`tab-${tab}`).classList.toggle("active", on);
    $(`tab-${tab}`).setAttribute("aria-selected", String(on));
    $(`panel-${tab}`).hidden = !on;
  }
}

function selectLine(textarea, line) {
  const lines = textarea.value.split("\n");
  if (!line || line > lines.length) return;
  const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
  textarea.focus();
  textarea.setSelectionRange(start, start + lines[line - 1].length);
}

async function validate() {
  const plan = $("plan");
  const res = await api("/api/validate", { method: "POST", body: { storyboard: $("storyboard-text").value } });
  if (!res.ok) {
    plan.className = "plan error";
    plan.textContent = errorText(res);
    return false;
  }
  if (res.data.ok) {
    plan.className = "plan";
    plan.textContent = `${res.data.plan}\n\n${res.data.num_blocks} blocks · ${res.data.duration_s} s of video`;
    return true;
  }
  const where = [
    res.data.line ? `line ${res.data.line}` : null,
    res.data.column ? `column ${res.data.column}` : null,
  ].filter(Boolean);
  plan.className = "plan error";
  plan.textContent = where.length ? `${where.join(", ")}: ${res.data.error}` : res.data.error;
  selectLine($("storyboard-text"), res.data.line);
  return false;
}

function onRenderUpdate(update) {
  const job = state.render;
  const id = update.render || update.id;
  if (!job || id !== job.id) return;
  if (update.event === "block_done") {
    job.blocks_done = update.block + 1;
    job.num_blocks = update.num_blocks;
  } else if (update.state) {
    Object.assign(job, update);
  }
  const progress = $("render-progress");
  progress.max = job.num_blocks || 1;
  progress.value = job.blocks_done || 0;
  $("render-status").textContent =
    job.state === "failed" ? `failed: ${job.error}` : `${job.state}: block ${job.blocks_done || 0} of ${job.num_blocks || "?"}`;
  if (job.state === "finished" && job.video && !job.shown) {
    job.shown = true;
    const video = $("render-video");
    video.src = job.video;
    video.hidden = false;
    const link = $("render-download");
    link.href = job.video;
    link.hidden = false;
  }
}

async function pollRender(id) {
  while (state.render && state.render.id === id && state.render.state === "running") {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const res = await api(`/api/render/${encodeURIComponent(id)}`);
    if (res.ok) onRenderUpdate(res.data);
    else if (res.status !== 0) break;
  }
}

async function render() {
  if (!(await validate())) return;
  const body = { storyboard: $("storyboard-text").value };
  const seed = $("render-seed").value.trim();
  if (seed !== "") body.seed = Number.parseInt(seed, 10);
  const res = await api("/api/render", { method: "POST", body });
  if (res.status !== 202) {
    $("render-status").textContent = errorText(res);
    return;
  }
  $("render-video").hidden = true;
  $("render-download").hidden = true;
  state.render = { ...res.data, state: "running" };
  onRenderUpdate(state.render);
  pollRender(res.data.id);
}

// ------------------------------------------------------------------------------------------ start
function wire() {
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendPrompt();
    }
  });
  $("new-session").addEventListener("submit", startSession);
  for (const action of ["pause", "resume", "stop"]) $(action).addEventListener("click", () => control(action));
  $("tab-live").addEventListener("click", () => showTab("live"));
  $("tab-storyboard").addEventListener("click", () => showTab("storyboard"));
  $("validate").addEventListener("click", validate);
  $("render").addEventListener("click", render);
  $("storyboard-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (file) $("storyboard-text").value = await readFile(file, "text");
  });
}

function main() {
  wire();
  loadHealth();
  refreshSession();
  state.player = new LivePlayer($("video"));
  new Socket("/api/events", {
    onMessage: onEvent,
    onOpen: () => {
      state.eventsOpen = true;
    },
    onClose: () => {
      state.eventsOpen = false;
    },
  });
  // Without the events socket (a proxy that drops WebSockets), the session is polled instead.
  setInterval(() => {
    if (!state.eventsOpen) refreshSession();
  }, 2000);
}

main();
