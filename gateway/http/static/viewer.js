// coaxgate viewer: every channel live over WebRTC (WHEP), falling back to the
// MJPEG URL where WebRTC cannot connect. `window.coaxgate` holds each
// channel's state (mode, frames decoded, fps, bitrate, round-trip time) for
// people and for tests.
"use strict";

const CONNECT_TIMEOUT_MS = 8000;
const state = {};
window.coaxgate = state;

function gatheringComplete(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(done, timeoutMs);
  });
}

function connected(pc, video, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no video in time")), timeoutMs);
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed" || pc.connectionState === "closed") {
        clearTimeout(timer);
        reject(new Error("connection " + pc.connectionState));
      }
    });
    video.addEventListener("playing", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

async function whep(name, video) {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addEventListener("track", (event) => {
    video.srcObject = event.streams[0] || new MediaStream([event.track]);
  });
  await pc.setLocalDescription(await pc.createOffer());
  await gatheringComplete(pc, 2000);
  const response = await fetch(`/channels/${encodeURIComponent(name)}/whep`, {
    method: "POST",
    headers: { "Content-Type": "application/sdp" },
    body: pc.localDescription.sdp,
  });
  if (response.status !== 201) {
    pc.close();
    throw new Error(`WHEP answered ${response.status}`);
  }
  const location = response.headers.get("Location");
  await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
  return { pc, location };
}

function fallbackToMjpeg(card, name, why) {
  const img = document.createElement("img");
  img.src = `/channels/${encodeURIComponent(name)}/mjpeg`;
  img.alt = name;
  card.figure.replaceChild(img, card.media);
  card.media = img;
  card.figure.classList.add("mode-mjpeg");
  state[name] = { mode: "mjpeg", reason: String(why) };
  card.overlay.textContent = "MJPEG";
}

async function collectStats(card, name, pc, video) {
  let lastBytes = null;
  let lastTime = null;
  card.timer = setInterval(async () => {
    const stats = await pc.getStats();
    let fps = 0, bytes = 0, rtt = null;
    stats.forEach((report) => {
      if (report.type === "inbound-rtp" && report.kind === "video") {
        fps = report.framesPerSecond || 0;
        bytes = report.bytesReceived || 0;
      }
      if (report.type === "candidate-pair" && report.nominated && report.state === "succeeded") {
        rtt = report.currentRoundTripTime ?? rtt;
      }
    });
    const now = performance.now();
    const kbps = lastBytes === null ? 0 : (8 * (bytes - lastBytes)) / (now - lastTime);
    lastBytes = bytes;
    lastTime = now;
    const quality = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    const frames = quality ? quality.totalVideoFrames : 0;
    state[name] = { mode: "webrtc", frames, fps, kbps: Math.round(kbps), rtt };
    const rttText = rtt === null ? "-" : `${Math.round(rtt * 1000)} ms`;
    card.overlay.textContent =
      `WebRTC\n${fps.toFixed(0)} fps\n${Math.round(kbps)} kb/s\nRTT ${rttText}`;
  }, 1000);
}

async function play(card, name) {
  const video = card.media;
  state[name] = { mode: "connecting" };
  try {
    const { pc, location } = await whep(name, video);
    card.close = () => {
      pc.close();
      if (location) fetch(location, { method: "DELETE", keepalive: true });
    };
    await connected(pc, video, CONNECT_TIMEOUT_MS);
    collectStats(card, name, pc, video);
  } catch (error) {
    if (card.close) card.close();
    fallbackToMjpeg(card, name, error);
  }
}

function makeCard(channel) {
  const figure = document.createElement("figure");
  const video = document.createElement("video");
  video.autoplay = true;
  video.muted = true;
  video.playsInline = true;
  const overlay = document.createElement("div");
  overlay.className = "overlay";
  overlay.textContent = "connecting";
  const caption = document.createElement("figcaption");
  const title = document.createElement("b");
  title.textContent = channel.name;
  const links = document.createElement("span");
  links.innerHTML =
    `<a href="${channel.urls.mjpeg}">mjpeg</a> · <a href="${channel.urls.snapshot}">snapshot</a>`;
  caption.append(title, links);
  figure.append(video, overlay, caption);
  return { figure, media: video, overlay, close: null, timer: null };
}

async function main() {
  const grid = document.getElementById("grid");
  const response = await fetch("/api/v1/channels");
  const { channels } = await response.json();
  grid.textContent = "";
  if (!channels.length) {
    grid.innerHTML = '<p class="empty">No channels configured.</p>';
    return;
  }
  const cards = [];
  for (const channel of channels) {
    const card = makeCard(channel);
    grid.append(card.figure);
    cards.push(card);
    play(card, channel.name);
  }
  window.addEventListener("pagehide", () => cards.forEach((c) => c.close && c.close()));
}

main();
