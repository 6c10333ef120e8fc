// clipmaker's page: submit a clip job through the HTTP API, follow its live events, show the clip.
// Plain JavaScript, no build step. Every URL is relative to <base href>, which the server sets
// to wherever the service is mounted.

const KEY_STORE = "clipmaker.apiKey";
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------- API and its key

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function storedKey() {
  try {
    return localStorage.getItem(KEY_STORE);
  } catch {
    return null; // storage disabled: the key lives only as long as the page
  }
}

let sessionKey = null;
function currentKey() {
  return storedKey() || sessionKey;
}

function authHeaders() {
  const key = currentKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

let keyPrompt = null;
// Ask for an API key (once, however many requests were refused); true when one was given.
function askForKey(refusedMessage) {
  if (keyPrompt) return keyPrompt;
  keyPrompt = new Promise((resolve) => {
    const dialog = $("key-dialog");
    const input = $("api-key");
    setError("key", refusedMessage || "");
    input.value = "";
    dialog.addEventListener(
      "close",
      () => {
        const key = input.value.trim();
        const given = dialog.returnValue === "save" && key !== "";
        if (given) {
          sessionKey = key;
          try {
            localStorage.setItem(KEY_STORE, key);
          } catch {
            /* kept for this page only */
          }
          $("forget-key-item").hidden = false;
        }
        keyPrompt = null;
        resolve(given);
      },
      { once: true },
    );
    dialog.returnValue = "";
    dialog.showModal();
    input.focus();
  });
  return keyPrompt;
}

async function errorOf(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.code) return body.error;
  } catch {
    /* not our JSON */
  }
  return { code: "http_error", message: `the server answered ${response.status}` };
}

// fetch() with the API key; a 401 asks for a key and tries again.
async function api(path, options = {}) {
  for (;;) {
    const headers = { ...(options.headers || {}), ...authHeaders() };
    let response;
    try {
      response = await fetch(path, { ...options, headers });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ApiError(0, "network_error", "the service could not be reached");
    }
    if (response.ok) return response;
    const error = await errorOf(response);
    if (response.status === 401) {
      const refused = currentKey() ? `That key was refused: ${error.message}` : "";
      if (await askForKey(refused)) continue;
    }
    throw new ApiError(response.status, error.code, error.message);
  }
}

// An upload, with progress (fetch() cannot report upload progress; XMLHttpRequest can).
function uploadOnce(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "api/uploads");
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON */
      }
      if (xhr.status >= 200 && xhr.status < 300) return resolve(body);
      const error = (body && body.error) || { code: "http_error", message: `${xhr.status}` };
      reject(new ApiError(xhr.status, error.code, error.message));
    };
    xhr.onerror = () => reject(new ApiError(0, "network_error", "the upload was interrupted"));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

async function upload(file, onProgress) {
  for (;;) {
    try {
      return await uploadOnce(file, onProgress);
    } catch (error) {
      if (error.status !== 401) throw error;
      const refused = currentKey() ? `That key was refused: ${error.message}` : "";
      if (!(await askForKey(refused))) throw error;
    }
  }
}

// The job's Server-Sent Events, read with fetch() so that the API key can travel in a header
// (EventSource cannot send one). Yields each event's JSON.
async function* jobEvents(jobId, signal) {
  const response = await api(`api/jobs/${encodeURIComponent(jobId)}/events`, {
    headers: { Accept: "text/event-stream" },
    signal,
    cache: "no-store",
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, ""))
        .join("\n");
      if (data) yield JSON.parse(data);
    }
  }
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Follow a job to its end, reopening the stream if it drops (it restarts from the current state).
async function follow(jobId, signal, onEvent) {
  let failures = 0;
  for (;;) {
    try {
      for await (const event of jobEvents(jobId, signal)) {
        failures = 0;
        onEvent(event);
        if (event.final) return event;
      }
    } catch (error) {
      if (error.name === "AbortError") throw error;
      if (error instanceof ApiError && error.status >= 400 && error.status < 500) throw error;
      failures += 1;
      if (failures > 10) throw error;
    }
    await pause(Math.min(250 * 2 ** failures, 5000));
  }
}

// ---------------------------------------------------------------------------- times

function formatTime(seconds) {
  if (!Number.isFinite(seconds)) return "";
  const total = Math.max(seconds, 0);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const rest = (total % 60).toFixed(3).padStart(6, "0");
  return `${String(hours).padStart(2, "0")}:${String(minutes).padStart(2, "0")}:${rest}`;
}

function parseTime(text) {
  const value = String(text).trim();
  const clock = /^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$/.exec(value);
  if (clock) return Number(clock[1] || 0) * 3600 + Number(clock[2]) * 60 + Number(clock[3]);
  return value === "" ? NaN : Number(value);
}

function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  const units = ["KiB", "MiB", "GiB"];
  let value = bytes;
  let unit = -1;
  do {
    value /= 1024;
    unit += 1;
  } while (value >= 1024 && unit < units.length - 1);
  return `${value.toFixed(1)} ${units[unit]}`;
}

// ---------------------------------------------------------------------------- errors at fields

const FIELDS = ["url", "file", "start", "end", "subtitles", "form", "key"];
const SOURCE_CODES = new Set([
  "invalid_source_url",
  "source_forbidden",
  "source_unreachable",
  "not_media",
  "corrupt_media",
  "no_video_stream",
  "live_source",
  "unsupported_source",
]);
const FILE_CODES = new Set([
  "upload_not_found",
  "upload_too_large",
  "payload_too_large",
  "unsupported_media_type",
]);
const LOCATIONS = [
  [/^source\.url\b/, "url"],
  [/^source\.upload_id\b/, "file"],
  [/^source\b/, "source"],
  [/^start\b/, "start"],
  [/^end\b/, "end"],
  [/^subtitles\b/, "subtitles"],
];

function setError(field, message) {
  const slot = $(`${field}-error`);
  if (!slot) return;
  slot.textContent = message || "";
  slot.hidden = !message;
  const input = $(field === "key" ? "api-key" : field);
  if (input && input.tagName !== "FORM") {
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
}

function clearErrors() {
  for (const field of FIELDS) setError(field, "");
}

function addError(field, message) {
  const slot = $(`${field}-error`);
  setError(field, slot && slot.textContent ? `${slot.textContent} ${message}` : message);
}

function focusFirstError() {
  for (const field of ["url", "file", "start", "end", "subtitles"]) {
    if (!$(`${field}-error`).hidden) {
      $(field).focus();
      return;
    }
  }
  if (!$("form-error").hidden) $("make").focus();
}

// Put an API error next to the field it is about (the form's foot when it is about none).
function showApiError(error, sourceField) {
  const code = error.code;
  if (code === "invalid_request") {
    for (const part of error.message.split("; ")) {
      const found = LOCATIONS.find(([pattern]) => pattern.test(part));
      const field = found ? found[1] : "form";
      addError(field === "source" ? sourceField : field, part);
    }
  } else if (SOURCE_CODES.has(code)) {
    addError(sourceField, error.message);
  } else if (FILE_CODES.has(code)) {
    addError("file", error.message);
  } else if (code === "range_out_of_bounds") {
    const duration = sourceDuration();
    const start = parseTime($("start").value);
    addError(Number.isFinite(duration) && start >= duration ? "start" : "end", error.message);
  } else if (code === "asr_unavailable") {
    addError("subtitles", error.message);
  } else {
    addError("form", error.message);
  }
  focusFirstError();
}

// ---------------------------------------------------------------------------- preview and scrubbing

let previewUrl = null; // an object URL of a chosen file, revoked when replaced

function sourceDuration() {
  const video = $("preview-video");
  return $("preview").hidden ? NaN : video.duration;
}

function showPreview(src, what) {
  const video = $("preview-video");
  const note = $("no-preview");
  $("preview").hidden = true;
  note.hidden = true;
  if (!src) {
    video.removeAttribute("src");
    video.load();
    return;
  }
  video.onloadedmetadata = () => {
    $("preview").hidden = false;
    $("preview-note").textContent =
      `The ${what} lasts ${formatTime(video.duration)}. Play or scrub it, then set the ` +
      "start and end from where it stands.";
    updateScrubButtons();
  };
  video.onerror = () => {
    $("preview").hidden = true;
    note.hidden = false;
    note.textContent =
      `This ${what} cannot be previewed in the browser (a page rather than a video file, ` +
      "or a format the browser does not play): type the start and end instead.";
  };
  video.src = src;
}

function previewSource() {
  const file = $("file").files[0];
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = null;
  if (file) {
    previewUrl = URL.createObjectURL(file);
    showPreview(previewUrl, "file");
    return;
  }
  const url = $("url").value.trim();
  showPreview(/^https?:\/\/\S+$/i.test(url) ? url : null, "video");
}

function updateScrubButtons() {
  const now = formatTime($("preview-video").currentTime || 0);
  for (const span of document.querySelectorAll("#preview .now")) span.textContent = now;
}

function setFromPreview(field) {
  const input = $(field);
  input.value = formatTime($("preview-video").currentTime || 0);
  setError(field, "");
  input.focus();
}

// ---------------------------------------------------------------------------- progress and result

const STAGE_ORDER = ["uploading", "queued", "fetching", "cutting", "transcribing", "storing"];
const STAGE_TEXT = {
  uploading: "Uploading the file",
  queued: "Waiting for a worker",
  fetching: "Fetching the source",
  cutting: "Cutting the clip",
  transcribing: "Transcribing the speech",
  storing: "Storing the results",
};

function showStages(withSubtitles, withUpload) {
  for (const item of $("stages").children) {
    const stage = item.dataset.stage;
    item.classList.remove("done");
    item.removeAttribute("aria-current");
    if (stage === "transcribing") item.hidden = !withSubtitles;
    if (stage === "uploading") item.hidden = !withUpload;
  }
}

function markStage(current, finished) {
  const at = STAGE_ORDER.indexOf(current);
  for (const item of $("stages").children) {
    const index = STAGE_ORDER.indexOf(item.dataset.stage);
    item.classList.remove("failed");
    item.classList.toggle("done", finished || index < at);
    if (!finished && index === at) item.setAttribute("aria-current", "step");
    else item.removeAttribute("aria-current");
  }
}

let lastAnnounced = "";
function say(text) {
  if (text !== lastAnnounced) $("status").textContent = text;
  lastAnnounced = text;
}

function renderEvent(event) {
  const percent = Math.round(event.progress * 100);
  $("progress").value = percent;
  $("progress-section").dataset.status = event.status;
  if (event.status === "queued") {
    markStage("queued", false);
    say(STAGE_TEXT.queued);
  } else if (event.status === "running") {
    const stage = event.stage || "fetching";
    markStage(stage, false);
    say(`${STAGE_TEXT[stage] || stage}… ${percent}%`);
  } else if (event.status === "succeeded") {
    markStage("storing", true);
    say("Done: your clip is ready.");
  } else if (event.status === "failed" || event.status === "cancelled") {
    // The stage it stopped at stays marked, as stopped rather than current.
    const stopped = document.querySelector('#stages li[aria-current="step"]');
    if (stopped) {
      stopped.removeAttribute("aria-current");
      stopped.classList.add("failed");
    }
    if (event.status === "failed") {
      say(`The clip could not be made: ${event.error ? event.error.message : "unknown error"}`);
    } else {
      say("Cancelled.");
    }
  }
}

function renderUpload(fraction) {
  const percent = Math.round(fraction * 100);
  $("progress").value = Math.min(percent, 99) * 0.05; // uploads fill the first 5 %
  markStage("uploading", false);
  say(`${STAGE_TEXT.uploading}… ${percent}%`);
}

function fileName(url, fallback) {
  try {
    const name = new URL(url, document.baseURI).pathname.split("/").pop();
    return name || fallback;
  } catch {
    return fallback;
  }
}

async function showResult(jobId) {
  const result = await (await api(`api/jobs/${encodeURIComponent(jobId)}/result`)).json();
  const video = $("clip-video");
  video.src = result.video.url;
  const link = $("download-clip");
  link.href = result.video.url;
  link.download = fileName(result.video.url, "clip.mp4");
  link.textContent = `Download clip (${formatBytes(result.video.bytes)})`;
  for (const format of ["srt", "vtt"]) {
    const sub = result.subtitles[format];
    const anchor = $(`download-${format}`);
    anchor.parentElement.hidden = !sub;
    if (sub) {
      anchor.href = sub.url;
      anchor.download = fileName(sub.url, `clip.${format}`);
    }
  }
  $("clip-facts").textContent = `${formatTime(result.video.duration)} long.`;
  $("expires").textContent = new Date(result.video.expires_at).toLocaleString();
  $("result-section").hidden = false;
  $("result-title").focus();
}

// ---------------------------------------------------------------------------- making a clip

let running = null; // {jobId, controller} while a job is followed

function setBusy(busy) {
  $("make").disabled = busy;
  $("clip-form").setAttribute("aria-busy", String(busy));
  $("cancel").hidden = !busy;
}

async function run(jobId, signal) {
  const last = await follow(jobId, signal, renderEvent);
  if (last.status === "succeeded") {
    await showResult(jobId);
  } else if (last.status === "failed" && last.error) {
    showApiError(last.error, $("file").files[0] ? "file" : "url");
  }
}

function startFollowing(jobId, subtitles, withUpload) {
  $("result-section").hidden = true;
  $("progress-section").hidden = false;
  showStages(subtitles !== "none", withUpload);
  const controller = new AbortController();
  running = { jobId, controller };
  return controller;
}

async function makeClip(event) {
  event.preventDefault();
  if (running) return;
  clearErrors();
  const file = $("file").files[0];
  const url = $("url").value.trim();
  const start = $("start").value.trim();
  const end = $("end").value.trim();
  const subtitles = $("subtitles").value;
  if (!file && !url) setError("url", "Give the video's URL, or choose a file.");
  if (!start) setError("start", "Give the time the clip starts at.");
  if (!end) setError("end", "Give the time the clip ends at.");
  if (!file && !url || !start || !end) {
    focusFirstError();
    return;
  }
  const sourceField = file ? "file" : "url";
  setBusy(true);
  const controller = startFollowing(null, subtitles, Boolean(file));
  try {
    let source = { url };
    if (file) {
      markStage("uploading", false);
      const uploaded = await upload(file, renderUpload);
      source = { upload_id: uploaded.upload_id };
    }
    const body = { source, start, end, subtitles, accuracy: $("accuracy").value };
    const response = await api("api/jobs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    const job = await response.json();
    running.jobId = job.id;
    history.replaceState(null, "", `#job=${job.id}`);
    await run(job.id, controller.signal);
  } catch (error) {
    if (error.name !== "AbortError") {
      $("progress-section").hidden = running && running.jobId ? false : true;
      if (error instanceof ApiError) showApiError(error, sourceField);
      else showApiError({ code: "client_error", message: String(error.message || error) });
    }
  } finally {
    running = null;
    setBusy(false);
  }
}

async function cancelClip() {
  if (!running || !running.jobId) return;
  try {
    await api(`api/jobs/${encodeURIComponent(running.jobId)}`, { method: "DELETE" });
  } catch (error) {
    if (error instanceof ApiError) addError("form", error.message);
  }
  // The stream reports "cancelled" and ends: the run above finishes on its own.
}

// A page reloaded while a job ran picks it up again from the address (#job=<id>).
async function resume() {
  const match = /^#job=([0-9a-f]{32})$/.exec(location.hash);
  if (!match) return;
  setBusy(true);
  try {
    const job = await (await api(`api/jobs/${match[1]}`)).json();
    const controller = startFollowing(job.id, job.request.subtitles, false);
    await run(job.id, controller.signal);
  } catch (error) {
    if (error instanceof ApiError) showApiError(error, "url");
  } finally {
    running = null;
    setBusy(false);
  }
}

function init() {
  $("clip-form").addEventListener("submit", makeClip);
  $("cancel").addEventListener("click", cancelClip);
  $("url").addEventListener("change", previewSource);
  $("file").addEventListener("change", () => {
    setError("file", "");
    previewSource();
  });
  $("set-start").addEventListener("click", () => setFromPreview("start"));
  $("set-end").addEventListener("click", () => setFromPreview("end"));
  $("preview-video").addEventListener("timeupdate", updateScrubButtons);
  $("preview-video").addEventListener("seeked", updateScrubButtons);
  for (const field of ["url", "start", "end", "subtitles"]) {
    $(field).addEventListener("input", () => setError(field, ""));
  }
  $("forget-key-item").hidden = !storedKey();
  $("forget-key").addEventListener("click", () => {
    try {
      localStorage.removeItem(KEY_STORE);
    } catch {
      /* nothing kept */
    }
    sessionKey = null;
    $("forget-key-item").hidden = true;
  });
  $("cancel").hidden = true;
  resume();
}

init();
