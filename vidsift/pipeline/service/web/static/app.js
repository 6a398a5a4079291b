// The vidsift page: search (words and/or a photo), play a clip, ask, summarize, index, follow
// jobs, download clips and chapters, watch live streams and see their alerts as they happen.
// Every request goes to the JSON API with the key in the X-API-Key header. Every text that came
// from a video (names, OCR, captions, answers, errors naming files) is set with textContent and
// never parsed as HTML; the page's Content-Security-Policy forbids inline script besides.
"use strict";

const KEY_STORAGE = "vidsift.apiKey";
const POLL_MS = 700;
const FINAL = new Set(["succeeded", "failed", "cancelled"]);

const $ = (id) => document.getElementById(id);

// ---- requests ----------------------------------------------------------------------------

function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (apiKey()) headers.set("X-API-Key", apiKey());
  const response = await fetch(path, { ...options, headers });
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try {
      message = (await response.json()).error || message;
    } catch (_) { /* not JSON: keep the status */ }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response;
}

async function apiJson(path, options) {
  return (await api(path, options)).json();
}

function postJson(path, body) {
  return apiJson(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
}

// ---- DOM helpers: text only ----------------------------------------------------------------

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "text") node.textContent = value;
    else if (name === "className") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function basename(path) {
  return String(path).split(/[\\/]/).pop();
}

function hms(seconds) {
  const total = Math.max(0, Number(seconds) || 0);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = (total % 60).toFixed(1).padStart(4, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function setStatus(node, message, isError = false) {
  node.textContent = message;
  node.classList.toggle("error", isError);
}

// Thumbnails need the key header too, so they are fetched and shown as blob: URLs; each
// container frees its previous ones when it is redrawn.
const blobUrls = new WeakMap();

function releaseThumbnails(container) {
  for (const url of blobUrls.get(container) || []) URL.revokeObjectURL(url);
  blobUrls.set(container, []);
}

function thumbnail(container, url, alt) {
  const img = el("img", { alt, loading: "lazy" });
  if (url) {
    api(url).then((r) => r.blob()).then((blob) => {
      const objectUrl = URL.createObjectURL(blob);
      (blobUrls.get(container) || blobUrls.set(container, []).get(container)).push(objectUrl);
      img.src = objectUrl;
    }).catch(() => img.classList.add("missing"));
  }
  return img;
}

// Downloads need the key header too: fetched, then saved from a blob: URL under the name the
// service gives (Content-Disposition), else `fallback`.
function attachmentName(response, fallback) {
  const header = response.headers.get("Content-Disposition") || "";
  const encoded = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (encoded) return decodeURIComponent(encoded[1]);
  const plain = /filename="([^"]+)"/i.exec(header);
  return plain ? plain[1] : fallback;
}

async function download(url, fallback, statusNode) {
  try {
    if (statusNode) setStatus(statusNode, `preparing ${fallback}...`);
    const response = await api(url);
    const objectUrl = URL.createObjectURL(await response.blob());
    const link = el("a", { href: objectUrl, download: attachmentName(response, fallback) });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(objectUrl), 60000);
    if (statusNode) setStatus(statusNode, `downloaded ${link.download}`);
  } catch (error) {
    if (statusNode) setStatus(statusNode, `${fallback}: ${error.message}`, true);
  }
}

function clipUrl(video, start, end) {
  return `/v1/clip?${new URLSearchParams({ video, start: String(start), end: String(end) })}`;
}

// A card: the button that plays a moment, and under it one that downloads it as an MP4.
function withClipDownload(button, video, start, end, statusNode) {
  const name = `${basename(video).replace(/\.[^.]*$/, "")}_${start}-${end}.mp4`;
  return el("div", { className: "card" }, [button, el("button", {
    type: "button", className: "download",
    "aria-label": `Download clip: ${basename(video)}, ${hms(start)} - ${hms(end)}, as MP4`,
    text: "Download clip",
    onclick: () => download(clipUrl(video, start, end), name, statusNode),
  })]);
}

// ---- player --------------------------------------------------------------------------------

let playRequest = 0;
// Indexed video -> the content hash of its memory (/v1/videos). A remote video's ticket asks
// for that version: its store may hold another by now.
const memoryHashes = new Map();

// contentHash: the memory the moment came from (a search hit's), else the indexed one's.
async function playAt(video, start, contentHash) {
  const player = $("player");
  const mine = ++playRequest;
  const version = contentHash || memoryHashes.get(video) || "";
  setStatus($("now-playing"), `${basename(video)} at ${hms(start)}`);
  try {
    if (player.dataset.video !== video || player.dataset.version !== version) {
      // A <video> cannot send the key header: the API grants a ticket URL for this one file.
      const ticket = await postJson("/v1/media/tickets",
        version ? { path: video, content_hash: version } : { path: video });
      if (mine !== playRequest) return;
      player.dataset.video = video;
      player.dataset.version = version;
      const loaded = new Promise((resolve, reject) => {
        player.addEventListener("loadedmetadata", resolve, { once: true });
        player.addEventListener("error", () => reject(new Error("the browser cannot play this video")),
          { once: true });
      });
      player.src = ticket.url;
      await loaded;
      if (mine !== playRequest) return;
    }
    player.currentTime = start;
    player.dataset.clipStart = String(start);
    player.play().catch(() => { /* autoplay refused: the position is set all the same */ });
  } catch (error) {
    delete player.dataset.video;
    setStatus($("now-playing"), `${basename(video)}: ${error.message}`, true);
  }
}

// ---- search --------------------------------------------------------------------------------

let searchPhoto = null;

function choosePhoto(file) {
  searchPhoto = file && file.type.startsWith("image/") ? file : null;
  $("image-label").textContent = searchPhoto ? `photo: ${searchPhoto.name}`
    : "Drop a photo here, or pick one";
  $("clear-image").hidden = !searchPhoto;
  if (!searchPhoto) $("search-image").value = "";
}

function hitCard(container, hit) {
  const name = basename(hit.video);
  return el("button", {
    type: "button", className: "hit", title: hit.video,
    dataset: { video: hit.video, start: String(hit.start) },
    onclick: () => playAt(hit.video, hit.start, hit.content_hash),
  }, [
    thumbnail(container, hit.thumbnail_url, `${name} at ${hms(hit.start)}`),
    el("span", { className: "name", text: name }),
    el("span", { className: "time", text: `${hms(hit.start)} - ${hms(hit.end)}` }),
    el("span", { className: "score", text: `score ${hit.score.toFixed(3)}` }),
    hit.text ? el("span", { className: "clip-text", text: hit.text }) : "",
  ]);
}

async function search(event) {
  event.preventDefault();
  const text = $("search-text").value.trim();
  const k = $("search-k").value || "12";
  const status = $("search-status");
  if (!text && !searchPhoto) {
    setStatus(status, "Type words, choose a photo, or both.", true);
    return;
  }
  setStatus(status, "searching...");
  const params = new URLSearchParams({ k });
  if (text) params.set("q", text);
  try {
    const payload = searchPhoto
      ? await apiJson(`/v1/search?${params}`, {
        method: "POST", body: searchPhoto, headers: { "Content-Type": searchPhoto.type },
      })
      : await apiJson(`/v1/search?${params}`);
    const results = $("results");
    releaseThumbnails(results);
    results.replaceChildren(...payload.hits.map((hit) => withClipDownload(
      hitCard(results, hit), hit.video, hit.start, hit.end, status)));
    setStatus(status, payload.hits.length ? `${payload.hits.length} clips`
      : "No clips found: is anything indexed?");
  } catch (error) {
    setStatus(status, error.message, true);
  }
}

// ---- jobs: follow, show ----------------------------------------------------------------------

const followed = new Map(); // job id -> {render(job)}

function progressText(job) {
  const p = job.progress;
  if (job.status !== "running" || !p) return job.status;
  const what = { index: "videos", chapters: "chapters replied" }[p.stage] || "shards";
  return `${p.done} / ${p.total} ${what}`;
}

function progressBar(job) {
  const bar = el("progress", { max: "1" });
  if (job.status === "running" && job.progress && job.progress.total) {
    bar.value = job.progress.done / job.progress.total;
  } else if (FINAL.has(job.status)) {
    bar.value = 1;
  } else {
    bar.removeAttribute("value"); // queued, or running before its first step: indeterminate
  }
  return bar;
}

function follow(jobId, render) {
  followed.set(jobId, render);
  const poll = async () => {
    try {
      const job = await apiJson(`/v1/jobs/${encodeURIComponent(jobId)}`);
      render(job);
      if (FINAL.has(job.status)) {
        followed.delete(jobId);
        refreshJobs();
        if (job.kind === "index") loadVideos();
        return;
      }
    } catch (error) {
      if (error.status === 404) return;
    }
    setTimeout(poll, POLL_MS);
  };
  poll();
}

function askedWhat(job) {
  const video = job.request.video;
  return `${video ? basename(video) : "all indexed videos"}: ${job.request.question}`;
}

function renderAskJob(box, job) {
  releaseThumbnails(box);
  const children = [
    el("h3", { text: askedWhat(job), title: job.request.video || "" }),
    el("div", { className: "job-state" }, [progressBar(job),
      el("span", { className: "job-status", text: progressText(job) })]),
  ];
  if (job.status === "failed") children.push(el("p", { className: "error", text: job.error }));
  if (job.status === "succeeded") {
    const result = job.result;
    children.push(result.answer === null
      ? el("p", { className: "evidence-only", text: "Evidence only (the service has no VLM): the segments a model would be shown." })
      : el("p", { className: "answer", text: result.answer }));
    children.push(el("p", { className: "status",
      text: `${result.segments.length} segment${result.segments.length === 1 ? "" : "s"}, ${result.tokens} of ${result.budget} visual tokens` }));
    // Asked across the index, each segment names its own video.
    const manyVideos = new Set(result.segments.map((seg) => seg.video || result.video)).size > 1;
    // The answer cites segments by the numbers the model was shown: [1], [2], ...
    const cited = new Set((result.citations || []).map((citation) => citation.segment));
    const segments = el("div", { className: "segments" });
    const downloads = el("p", { className: "status", role: "status" });
    segments.append(...result.segments.map((seg, n) => {
      const video = seg.video || result.video;
      const button = el("button", {
        type: "button", className: cited.has(n + 1) ? "segment cited" : "segment", title: video,
        dataset: { start: String(seg.start), video },
        onclick: () => playAt(video, seg.start),
      }, [
        thumbnail(box, seg.thumbnail_url, `evidence ${n + 1}`),
        el("span", { className: "number", text: cited.has(n + 1) ? `[${n + 1}] cited` : `[${n + 1}]` }),
        manyVideos ? el("span", { className: "name", text: basename(video) }) : "",
      el("span", { className: "time", text: seg.kind === "image" ? hms(seg.start)
        : `${hms(seg.start)} - ${hms(seg.end)}` }),
        el("span", { className: "tokens", text: `${seg.kind}, ${seg.tokens} tokens` }),
      ]);
      // A clip can be taken away; an image segment is one frame.
      return seg.end > seg.start ? withClipDownload(button, video, seg.start, seg.end, downloads)
        : el("div", { className: "card" }, [button]);
    }));
    children.push(segments, downloads);
  }
  box.replaceChildren(...children);
}

function showAskJob(jobId) {
  const list = $("ask-jobs");
  let box = list.querySelector(`[data-job="${CSS.escape(jobId)}"]`);
  if (!box) {
    box = el("article", { className: "ask-job", dataset: { job: jobId } });
    list.prepend(box);
  }
  if (!followed.has(jobId)) follow(jobId, (job) => renderAskJob(box, job));
}

async function ask(event) {
  event.preventDefault();
  const question = $("ask-question").value.trim();
  const budget = parseInt($("ask-budget").value, 10);
  const options = Number.isFinite(budget) ? { budget } : {};
  // No video: the service asks across the clip index (its best clips of every indexed video
  // inside the media roots, one budget over them).
  const video = $("ask-video").value;
  const list = $("ask-jobs");
  clearErrors(list);
  try {
    const job = await postJson("/v1/jobs", video ? { video, question, options }
      : { question, options });
    showAskJob(job.id);
    refreshJobs();
  } catch (error) {
    list.prepend(el("p", { className: "error", text: error.message }));
  }
}

// ---- summaries --------------------------------------------------------------------------------

const EXPORTS = [["vtt", "WebVTT chapters"], ["ffmetadata", "ffmpeg chapters"],
  ["youtube", "video-site lines"], ["md", "Markdown"]];

// The chapters as a bar across the video's length, a button per chapter, as wide as it is long.
function chapterTimeline(result) {
  const bar = el("div", { className: "timeline", role: "group",
    "aria-label": `Chapters of ${basename(result.video)}` });
  result.chapters.forEach((chapter, n) => {
    const title = chapter.title || "(nothing read or heard)";
    const part = el("button", {
      type: "button", className: "chapter-part", title: `${hms(chapter.start)} ${title}`,
      "aria-label": `Chapter ${n + 1}: ${title}, ${hms(chapter.start)} - ${hms(chapter.end)}`,
      dataset: { start: String(chapter.start) },
      onclick: () => playAt(result.video, chapter.start),
    }, [el("span", { text: String(n + 1) })]);
    part.style.flexGrow = String(Math.max(chapter.end - chapter.start, 0.001));
    bar.append(part);
  });
  return bar;
}

function renderSummaryJob(box, job) {
  releaseThumbnails(box);
  const video = job.request.video;
  const children = [
    el("h3", { text: `summary of ${basename(video)}`, title: video }),
    el("div", { className: "job-state" }, [progressBar(job),
      el("span", { className: "job-status", text: progressText(job) })]),
  ];
  if (job.status === "failed") children.push(el("p", { className: "error", text: job.error }));
  if (job.status === "succeeded") {
    const result = job.result;
    const downloads = el("p", { className: "status", role: "status" });
    children.push(result.summary
      ? el("p", { className: "answer", text: result.summary })
      : el("p", { className: "evidence-only",
        text: "Extractive (the service has no VLM): each chapter titled with what was read or heard in it; no prose." }));
    children.push(chapterTimeline(result));
    const chapters = el("ol", { className: "chapters" });
    chapters.append(...result.chapters.map((chapter, n) => el("li", {}, [el("button", {
      type: "button", className: "chapter", dataset: { start: String(chapter.start) },
      onclick: () => playAt(result.video, chapter.start),
    }, [
      thumbnail(box, chapter.thumbnail_url, `chapter ${n + 1}`),
      el("span", { className: "time", text: `${hms(chapter.start)} - ${hms(chapter.end)}` }),
      el("span", { className: "name", text: chapter.title || "(nothing read or heard)" }),
      chapter.summary ? el("span", { className: "clip-text", text: chapter.summary }) : "",
    ])])));
    children.push(chapters);
    if (result.highlights.length) {
      children.push(el("h4", { text: "Highlights" }));
      const highlights = el("div", { className: "segments highlights" });
      highlights.append(...result.highlights.map((h) => withClipDownload(el("button", {
        type: "button", className: "highlight", dataset: { start: String(h.start) },
        onclick: () => playAt(result.video, h.start),
      }, [
        el("span", { className: "time", text: `${hms(h.start)} - ${hms(h.end)}` }),
        el("span", { className: "name", text: h.title }),
        h.why ? el("span", { className: "clip-text", text: h.why }) : "",
      ]), result.video, h.start, h.end, downloads)));
      children.push(highlights);
    }
    const stem = basename(result.video).replace(/\.[^.]*$/, "");
    children.push(el("div", { className: "exports" }, EXPORTS.map(([fmt, label]) => el("button", {
      type: "button", className: "download", dataset: { format: fmt },
      text: `Chapters: ${label}`,
      onclick: () => download(result.exports[fmt], `${stem}.chapters.${fmt === "youtube" ? "txt" : fmt}`,
        downloads),
    }))), downloads);
  }
  box.replaceChildren(...children);
}

function showSummaryJob(jobId) {
  const list = $("summary-jobs");
  let box = list.querySelector(`[data-job="${CSS.escape(jobId)}"]`);
  if (!box) {
    box = el("article", { className: "summary-job", dataset: { job: jobId } });
    list.prepend(box);
  }
  if (!followed.has(jobId)) follow(jobId, (job) => renderSummaryJob(box, job));
}

async function summarize(event) {
  event.preventDefault();
  const list = $("summary-jobs");
  clearErrors(list);
  try {
    const job = await postJson("/v1/summaries", { video: $("summary-video").value });
    showSummaryJob(job.id);
    refreshJobs();
  } catch (error) {
    list.prepend(el("p", { className: "error", text: error.message }));
  }
}

// ---- indexing --------------------------------------------------------------------------------

function renderIndexJob(box, job) {
  const children = [
    el("h3", { text: `index ${job.request.paths.map(basename).join(", ")}`,
      title: job.request.paths.join("\n") }),
    el("div", { className: "job-state" }, [progressBar(job),
      el("span", { className: "job-status", text: progressText(job) })]),
  ];
  if (job.status === "running" && job.progress && job.progress.video) {
    children.push(el("p", { className: "status", text: `last: ${basename(job.progress.video)}` }));
  }
  if (job.status === "failed") children.push(el("p", { className: "error", text: job.error }));
  if (job.status === "succeeded") {
    const r = job.result;
    // reindexed: absent from the results of jobs run before it was reported
    const redone = r.reindexed && r.reindexed.length ? `${r.reindexed.length} re-indexed for other speech settings, ` : "";
    children.push(el("p", { className: "summary",
      text: `${r.indexed.length} indexed (${redone}${r.clips} clips), ${r.skipped.length} already indexed, ${r.failed.length} failed` }));
    for (const { path, error } of r.failed) {
      children.push(el("p", { className: "error", text: `${basename(path)}: ${error}` }));
    }
  }
  box.replaceChildren(...children);
}

function clearErrors(list) {
  for (const node of list.querySelectorAll(":scope > p.error")) node.remove();
}

function showIndexJob(jobId) {
  const list = $("index-jobs");
  let box = list.querySelector(`[data-job="${CSS.escape(jobId)}"]`);
  if (!box) {
    box = el("article", { className: "index-job", dataset: { job: jobId } });
    list.prepend(box);
  }
  if (!followed.has(jobId)) follow(jobId, (job) => renderIndexJob(box, job));
}

async function indexFolder(event) {
  event.preventDefault();
  const path = $("index-path").value.trim();
  clearErrors($("index-jobs"));
  try {
    const job = await postJson("/v1/index", { paths: [path] });
    showIndexJob(job.id);
    refreshJobs();
  } catch (error) {
    $("index-jobs").prepend(el("p", { className: "error", text: error.message }));
  }
}

// An upload goes into the service's own storage (POST /v1/files, the file's bytes as the body)
// and is then indexed like a path under a media root.
async function uploadVideo(event) {
  event.preventDefault();
  const file = $("upload-file").files[0];
  if (!file) return;
  clearErrors($("index-jobs"));
  $("upload-button").disabled = true;
  try {
    const stored = await apiJson(`/v1/files?name=${encodeURIComponent(file.name)}`, {
      method: "POST", headers: { "Content-Type": file.type || "application/octet-stream" },
      body: file,
    });
    const job = await postJson("/v1/index", { paths: [stored.path] });
    showIndexJob(job.id);
    refreshJobs();
  } catch (error) {
    $("index-jobs").prepend(el("p", { className: "error", text: error.message }));
  } finally {
    $("upload-button").disabled = false;
  }
}

// ---- the jobs table --------------------------------------------------------------------------

function jobWhat(job) {
  if (job.kind === "ask") return askedWhat(job);
  if (job.kind === "index") return (job.request.paths || []).map(basename).join(", ");
  if (job.kind === "summarize") return `summary of ${basename(job.request.video)}`;
  return job.kind;
}

function jobRow(job) {
  const actions = [];
  if (job.kind === "ask") {
    actions.push(el("button", { type: "button", text: "show", onclick: () => showAskJob(job.id) }));
  } else if (job.kind === "index") {
    actions.push(el("button", { type: "button", text: "show", onclick: () => showIndexJob(job.id) }));
  } else if (job.kind === "summarize") {
    actions.push(el("button", { type: "button", text: "show", onclick: () => showSummaryJob(job.id) }));
  }
  if (!FINAL.has(job.status)) {
    actions.push(el("button", {
      type: "button", text: "cancel",
      onclick: () => api(`/v1/jobs/${encodeURIComponent(job.id)}`, { method: "DELETE" })
        .then(refreshJobs).catch(() => {}),
    }));
  }
  const row = el("tr", { dataset: { job: job.id, status: job.status } }, [
    el("td", { text: new Date(job.created_at * 1000).toLocaleString() }),
    el("td", { text: job.kind }),
    el("td", { className: "what", text: jobWhat(job), title: job.error || "" }),
    el("td", { className: "job-status", text: job.status }),
    el("td", {}, [progressBar(job), el("span", { text: ` ${progressText(job)}` })]),
    el("td", {}, actions),
  ]);
  // On a phone the rows are stacked cards: each cell shows its column's name (style.css).
  const headers = $("jobs").tHead.rows[0].cells;
  [...row.cells].forEach((cell, n) => { cell.dataset.label = headers[n].textContent; });
  return row;
}

let jobsTimer = null;

async function refreshJobs() {
  clearTimeout(jobsTimer);
  try {
    const { jobs } = await apiJson("/v1/jobs?limit=50");
    $("jobs").tBodies[0].replaceChildren(...jobs.map(jobRow));
    const busy = jobs.some((job) => !FINAL.has(job.status));
    jobsTimer = setTimeout(refreshJobs, busy ? 1500 : 10000);
  } catch (error) {
    if (error.status !== 401) jobsTimer = setTimeout(refreshJobs, 10000);
  }
}

// ---- live streams ----------------------------------------------------------------------------

// Server-Sent Events, parsed as the HTML standard's EventSource does: lines end with CRLF, LF or
// CR; `field: value` (one space after the colon dropped); a line starting with ':' is a comment;
// a blank line dispatches the data lines gathered since the last one (joined with "\n"); `id`
// sets the last event id (kept by events with no data too), `retry` the reconnection delay.
// Returns feed(text): give it the decoded text as it arrives, in chunks of any size.
function sseParser(onMessage, onRetry) {
  let buffer = "";
  let data = [];
  let type = "";
  let lastId = null;
  function line(text) {
    if (text === "") {
      if (data.length) onMessage({ id: lastId, event: type || "message", data: data.join("\n") });
      data = [];
      type = "";
      return;
    }
    if (text.startsWith(":")) return;
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") type = value;
    else if (field === "id" && !value.includes("\0")) lastId = value;
    else if (field === "retry" && /^\d+$/.test(value)) onRetry(Number(value));
  }
  return (text) => {
    buffer += text;
    for (;;) {
      const end = buffer.search(/[\r\n]/);
      // A CR as the last character may be the first half of a CRLF: wait for what follows.
      if (end < 0 || (buffer[end] === "\r" && end === buffer.length - 1)) return;
      const size = buffer[end] === "\r" && buffer[end + 1] === "\n" ? 2 : 1;
      const piece = buffer.slice(0, end);
      buffer = buffer.slice(end + size);
      line(piece);
    }
  };
}

// A stream's events, live: GET /v1/streams/NAME/events read with fetch (an EventSource cannot
// send the key header), reconnecting after a drop with Last-Event-ID (the last event shown, so
// none comes twice and none is missed), waiting the service's `retry` delay doubled per failed
// try, 30 s at most. One stream is followed at a time.
const MAX_EVENTS_SHOWN = 200;
let eventsFeed = null; // {name, abort: AbortController, lastId, retryMs}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

function wallClock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour12: false });
}

function eventItem(event) {
  const item = el("li", { className: "event", dataset: { id: String(event.id) } });
  const when = `${wallClock(event.start)} - ${wallClock(event.end)}`;
  const verdict = event.verified
    ? `verified${event.answer ? `: ${event.answer}` : ""}`
    : event.answer ? `not confirmed: ${event.answer}` : "not verified";
  item.append(
    thumbnail(item, event.thumbnail, `${event.alert}, ${when}`),
    el("div", { className: "event-text" }, [
      el("span", { className: "name", text: event.alert }),
      el("time", { className: "time", datetime: new Date(event.start * 1000).toISOString(),
        text: when }),
      el("span", { className: "score", text: `score ${Number(event.score).toFixed(3)}` }),
      el("span", { className: "verdict", text: verdict }),
    ]));
  return item;
}

function showEvent(feed, event) {
  const list = $("stream-events");
  list.prepend(eventItem(event));
  while (list.children.length > MAX_EVENTS_SHOWN) {
    releaseThumbnails(list.lastElementChild);
    list.lastElementChild.remove();
  }
  setStatus($("events-status"), liveText(feed));
}

function liveText(feed) {
  const shown = $("stream-events").children.length;
  return shown ? `live: ${shown} event${shown === 1 ? "" : "s"} of ${feed.name}`
    : `live: no events of ${feed.name} yet`;
}

async function readEvents(feed, response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const feedText = sseParser((message) => {
    if (message.id !== null) feed.lastId = message.id;
    if (message.event === "alert") showEvent(feed, JSON.parse(message.data));
  }, (ms) => { feed.retryMs = ms; });
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    feedText(decoder.decode(value, { stream: true }));
  }
}

async function followEvents(name) {
  stopEvents();
  const feed = { name, abort: new AbortController(), lastId: null, retryMs: 2000 };
  eventsFeed = feed;
  const list = $("stream-events");
  for (const item of list.children) releaseThumbnails(item);
  list.replaceChildren();
  $("events-title").textContent = `Events of ${name}`;
  $("events-panel").hidden = false;
  const status = $("events-status");
  setStatus(status, `connecting to ${name}...`);
  for (let failures = 0; eventsFeed === feed;) {
    try {
      const headers = { Accept: "text/event-stream" };
      if (feed.lastId !== null) headers["Last-Event-ID"] = feed.lastId;
      const response = await api(`/v1/streams/${encodeURIComponent(name)}/events`,
        { headers, signal: feed.abort.signal, cache: "no-store" });
      failures = 0;
      setStatus(status, liveText(feed));
      await readEvents(feed, response);
    } catch (error) {
      if (eventsFeed !== feed) return;
      // No key, or no such stream (forgotten): retrying would not help.
      if (error.status === 401 || error.status === 404) {
        setStatus(status, `${name}: ${error.message}`, true);
        return;
      }
      failures += 1;
    }
    if (eventsFeed !== feed) return;
    const delay = Math.min(30000, feed.retryMs * 2 ** Math.max(0, failures - 1));
    setStatus(status, `${name}: connection lost, reconnecting in ${Math.round(delay / 1000)} s`);
    await sleep(delay, feed.abort.signal);
  }
}

function stopEvents() {
  if (eventsFeed) eventsFeed.abort.abort();
  eventsFeed = null;
}

function lagText(stream) {
  const parts = [];
  if (stream.lag_s !== null && stream.lag_s !== undefined) {
    parts.push(`${stream.lag_s.toFixed(1)} s`);
    // the coarse rate the watcher samples at now: lowered while it falls behind
    if (stream.coarse_fps) parts.push(`${+stream.coarse_fps.toFixed(3)} fps`);
  }
  if (stream.gaps && stream.gaps.length) {
    const missed = stream.gaps.reduce((sum, [a, b]) => sum + Math.max(0, b - a), 0);
    parts.push(`${stream.gaps.length} gap${stream.gaps.length === 1 ? "" : "s"} (${missed.toFixed(0)} s)`);
  }
  return parts.join(", ") || "-";
}

async function streamAction(name, purge) {
  const status = $("stream-status");
  try {
    await api(`/v1/streams/${encodeURIComponent(name)}${purge ? "?purge=true" : ""}`,
      { method: "DELETE" });
    if (purge && eventsFeed && eventsFeed.name === name) {
      stopEvents();
      $("events-panel").hidden = true;
    }
    setStatus(status, purge ? `${name} forgotten, its memory and events deleted` : `${name} stopped`);
  } catch (error) {
    setStatus(status, `${name}: ${error.message}`, true);
  }
  refreshStreams();
}

function streamRow(stream) {
  const name = stream.name;
  const actions = [el("button", {
    type: "button", className: "show-events", text: "events",
    "aria-label": `Show the events of ${name}`, onclick: () => followEvents(name),
  })];
  if (stream.state === "running") {
    actions.push(el("button", { type: "button", className: "stop", text: "stop",
      "aria-label": `Stop watching ${name}`, onclick: () => streamAction(name, false) }));
  } else {
    actions.push(el("button", { type: "button", className: "forget", text: "forget",
      "aria-label": `Forget ${name} and delete its memory and events`,
      onclick: () => streamAction(name, true) }));
  }
  const row = el("tr", { dataset: { stream: name, state: stream.state } }, [
    el("td", { className: "name", text: name }),
    el("td", { className: "what", text: stream.url }),
    el("td", { className: "stream-state", text: stream.state, title: stream.error || "" }),
    el("td", { className: "lag", text: lagText(stream) }),
    el("td", { className: "event-count", text: String(stream.events) }),
    el("td", {}, actions),
  ]);
  if (stream.error) row.cells[2].append(el("span", { className: "error", text: ` ${stream.error}` }));
  const headers = $("streams").tHead.rows[0].cells;
  [...row.cells].forEach((cell, n) => { cell.dataset.label = headers[n].textContent; });
  return row;
}

let streamsTimer = null;

async function refreshStreams() {
  clearTimeout(streamsTimer);
  try {
    const { streams } = await apiJson("/v1/streams");
    const body = $("streams").tBodies[0];
    // Redrawn only when something changed, so a focused button stays focused.
    const drawn = JSON.stringify(streams.map((s) => [s.name, s.url, s.state, s.error, lagText(s), s.events]));
    if (body.dataset.drawn !== drawn) {
      const focused = document.activeElement && body.contains(document.activeElement)
        ? document.activeElement.getAttribute("aria-label") : null;
      body.replaceChildren(...streams.map(streamRow));
      body.dataset.drawn = drawn;
      if (focused) {
        const again = [...body.querySelectorAll("button")].find((b) => b.getAttribute("aria-label") === focused);
        if (again) again.focus();
      }
    }
    // Often while one runs (its lag and count move), seldom while all are stopped, not at all
    // with none: the page's own actions refresh the list.
    const running = streams.some((s) => s.state === "running");
    if (streams.length) streamsTimer = setTimeout(refreshStreams, running ? 2000 : 30000);
  } catch (error) {
    if (error.status !== 401) streamsTimer = setTimeout(refreshStreams, 30000);
  }
}

async function watchStream(event) {
  event.preventDefault();
  const status = $("stream-status");
  const name = $("stream-name").value.trim();
  const alerts = $("stream-alerts").value.split("\n").map((a) => a.trim()).filter(Boolean);
  $("stream-button").disabled = true;
  try {
    await postJson("/v1/streams", { url: $("stream-url").value.trim(), name, alerts });
    setStatus(status, `watching ${name}`);
    followEvents(name);
  } catch (error) {
    setStatus(status, error.message, true);
  } finally {
    $("stream-button").disabled = false;
  }
  refreshStreams();
}


// ---- start-up --------------------------------------------------------------------------------

async function loadVideos() {
  const { videos } = await apiJson("/v1/videos");
  memoryHashes.clear();
  for (const v of videos) memoryHashes.set(v.path, v.content_hash);
  for (const select of [$("ask-video"), $("summary-video")]) {
    const chosen = select.value;
    const options = videos.map((v) => el("option", { value: v.path, text: basename(v.path), title: v.path }));
    select.replaceChildren(select.options[0], ...options);
    if (videos.some((v) => v.path === chosen)) select.value = chosen;
  }
}

async function start() {
  const status = $("key-status");
  try {
    const info = await apiJson("/v1/info");
    setStatus(status, apiKey() ? "key accepted" : "");
    $("media-roots").replaceChildren(...info.media_roots.map((root) => el("option", { value: root })));
    // Named beside the field, not as its placeholder: a path there reads as already filled in.
    setStatus($("index-hint"), `Media roots: ${info.media_roots.join(", ")} (a relative path is taken from the first)`);
    setStatus($("stream-hint"), info.stream_urls && info.stream_urls.length
      ? `This service may watch URLs starting with: ${info.stream_urls.join(", ")}`
      : "This service may watch no stream (serve.stream_urls is empty)");
    await loadVideos();
    await refreshJobs();
    await refreshStreams();
  } catch (error) {
    setStatus(status, error.status === 401 ? "this service needs its API key" : error.message, true);
  }
}

function init() {
  $("api-key").value = apiKey();
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(KEY_STORAGE, $("api-key").value.trim());
    start();
  });
  $("forget-key").addEventListener("click", () => {
    localStorage.removeItem(KEY_STORAGE);
    $("api-key").value = "";
    start();
  });
  $("search-form").addEventListener("submit", search);
  $("search-image").addEventListener("change", (event) => choosePhoto(event.target.files[0]));
  $("clear-image").addEventListener("click", () => choosePhoto(null));
  const drop = $("image-drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    choosePhoto(event.dataTransfer.files[0]);
  });
  // A ticket that expired or a service that restarted: the next click asks for a new one.
  $("player").addEventListener("error", () => delete $("player").dataset.video);
  $("ask-form").addEventListener("submit", ask);
  $("summary-form").addEventListener("submit", summarize);
  $("index-form").addEventListener("submit", indexFolder);
  $("upload-form").addEventListener("submit", uploadVideo);
  $("stream-form").addEventListener("submit", watchStream);
  start();
}

init();
