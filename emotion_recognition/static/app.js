"use strict";
// The camera's frames go to the server over a WebSocket, one at a time: the next frame is sent only
// when the answer to the last one has arrived, so the server never works on a stale frame. Each
// answer's faces are drawn over the video and listed as text. A dropped or chosen photo is posted to
// /v1/analyze and drawn the same way. Everything comes from this server; nothing from the internet.

const SEND_WIDTH = 640;       // frames wider than this are scaled down before they are sent
const JPEG_QUALITY = 0.8;     // plenty for the face detector: a 640x480 frame is about 40 kB
const RECONNECT_MS = 2000;    // wait before opening a lost stream again
const FPS_WINDOW_MS = 2000;   // frames/s counts the answers of this long a time
const COLORS = {angry: "#e53935", disgust: "#8e24aa", fear: "#5e35b1", happy: "#43a047",
                neutral: "#78909c", sad: "#1e88e5", surprise: "#fb8c00"};

const $ = (id) => document.getElementById(id);
const video = $("video");
const overlay = $("overlay");
const capture = document.createElement("canvas");  // where a frame is scaled and encoded
const answerTimes = [];
// Calls back when the camera has a new frame (where the browser can tell), so no frame is sent twice.
const afterNewFrame = video.requestVideoFrameCallback ? (callback) => video.requestVideoFrameCallback(callback)
                                                      : (callback) => requestAnimationFrame(callback);

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function faceLabel(face, index) {
  return `face ${face.id ?? index + 1}: ${face.emotion} ${Math.round(face.confidence * 100)}%`;
}

function listItem(text, className = "") {
  const item = document.createElement("li");
  item.textContent = text;
  item.className = className;
  return item;
}

function listFaces(list, faces) {
  const items = faces.map((face, index) => listItem(faceLabel(face, index)));
  list.replaceChildren(...(items.length ? items : [listItem("no face", "none")]));
}

// --- Drawing: a box and a label per face, and a bar per emotion beside the box ---------------------
function drawFaces(context, faces, scale) {
  const font = Math.max(12, Math.round(context.canvas.width / 40));
  context.font = `${font}px system-ui, sans-serif`;
  context.lineWidth = Math.max(2, font / 6);
  faces.forEach((face, index) => {
    const [x, y, w, h] = face.box.map((value) => value * scale);
    const color = COLORS[face.emotion] ?? "#fff";
    context.strokeStyle = color;
    context.strokeRect(x, y, w, h);
    const label = faceLabel(face, index);
    const labelTop = y >= font + 6 ? y - font - 6 : y;  // above the box, or inside it at the top edge
    context.fillStyle = color;
    context.fillRect(x, labelTop, context.measureText(label).width + 8, font + 6);
    context.fillStyle = "#fff";
    context.fillText(label, x + 4, labelTop + font);
    drawBars(context, face.probabilities, x, y, w, font);
  });
}

function drawBars(context, probabilities, x, y, w, font) {
  const barLength = font * 4, nameWidth = font * 4.5, row = font + 2;
  const width = barLength + nameWidth;
  const left = x + w + 4 + width <= context.canvas.width ? x + w + 4 : Math.max(0, x - width - 4);
  Object.entries(probabilities).forEach(([name, probability], index) => {
    const top = y + index * row;
    context.fillStyle = "rgba(0, 0, 0, 0.55)";
    context.fillRect(left, top, width, row);
    context.fillStyle = COLORS[name] ?? "#fff";
    context.fillRect(left + 2, top + 2, (barLength - 4) * probability, row - 4);
    context.fillStyle = "#fff";
    context.fillText(name, left + barLength + 2, top + font - 1);
  });
}

// --- The camera stream ------------------------------------------------------------------------------
async function startCamera() {
  if (!navigator.mediaDevices?.getUserMedia) {
    setStatus("This browser gives the camera to secure pages only: open http://localhost:PORT/ on the machine " +
              "that runs the server, or start the server with a certfile and keyfile and open it over https. " +
              "A photo can still be dropped below.", true);
    return;
  }
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia(
      {video: {width: {ideal: 640}, height: {ideal: 480}}, audio: false});
    await video.play();
  } catch (error) {
    setStatus(`No camera (${error.message}). A photo can still be dropped below.`, true);
    return;
  }
  connect();
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/v1/stream`);
  socket.onopen = () => {
    setStatus("Streaming the camera to the server.");
    sendFrame(socket);
  };
  socket.onmessage = (event) => {
    showAnswer(JSON.parse(event.data));
    afterNewFrame(() => sendFrame(socket));  // the next frame, now that this one is answered
  };
  socket.onclose = (event) => {
    setStatus(`The stream closed${event.reason ? ` (${event.reason})` : ""}; opening it again…`, true);
    setTimeout(connect, RECONNECT_MS);
  };
}

function sendFrame(socket) {
  if (socket.readyState !== WebSocket.OPEN) return;
  if (video.readyState < video.HAVE_CURRENT_DATA || !video.videoWidth) {
    afterNewFrame(() => sendFrame(socket));  // no picture yet
    return;
  }
  const scale = Math.min(1, SEND_WIDTH / video.videoWidth);
  capture.width = Math.round(video.videoWidth * scale);
  capture.height = Math.round(video.videoHeight * scale);
  capture.getContext("2d").drawImage(video, 0, 0, capture.width, capture.height);
  capture.toBlob((blob) => {
    if (!blob) afterNewFrame(() => sendFrame(socket));
    else if (socket.readyState === WebSocket.OPEN) socket.send(blob);
  }, "image/jpeg", JPEG_QUALITY);
}

function showAnswer(answer) {
  countAnswer();
  overlay.width = video.videoWidth;  // also clears the last frame's drawing
  overlay.height = video.videoHeight;
  if (answer.error) {
    setStatus(answer.error, true);
    return;
  }
  drawFaces(overlay.getContext("2d"), answer.faces, video.videoWidth / answer.width);
  listFaces($("emotions"), answer.faces);
}

function countAnswer() {
  const now = performance.now();
  answerTimes.push(now);
  while (answerTimes[0] < now - FPS_WINDOW_MS) answerTimes.shift();
  const seconds = (now - answerTimes[0]) / 1000;
  $("fps").textContent = seconds > 0 ? `${((answerTimes.length - 1) / seconds).toFixed(1)} frames/s` : "– frames/s";
}

// --- A photo ------------------------------------------------------------------------------------------
async function analyzePhoto(file) {
  if (!file) return;
  const list = $("photo-emotions");
  const canvas = $("photo");
  list.replaceChildren(listItem(`reading ${file.name}…`, "none"));
  const form = new FormData();
  form.append("file", file);
  let answer;
  try {
    const response = await fetch("/v1/analyze", {method: "POST", body: form});
    answer = await response.json();
    if (!response.ok) throw new Error(answer.error ?? response.statusText);
  } catch (error) {
    canvas.hidden = true;
    list.replaceChildren(listItem(`${file.name}: ${error.message}`, "error"));
    return;
  }
  listFaces(list, answer.faces);
  try {
    const image = await createImageBitmap(file);
    canvas.width = image.width;
    canvas.height = image.height;
    const context = canvas.getContext("2d");
    context.drawImage(image, 0, 0);
    drawFaces(context, answer.faces, 1);
    canvas.hidden = false;
  } catch {
    canvas.hidden = true;  // a format the server reads and this browser does not: the list says it all
  }
}

const drop = $("drop");
document.addEventListener("dragover", (event) => {
  event.preventDefault();  // else the browser opens the dropped file itself
  drop.classList.add("over");
});
document.addEventListener("dragleave", () => drop.classList.remove("over"));
document.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  analyzePhoto(event.dataTransfer.files[0]);
});
$("file").addEventListener("change", (event) => analyzePhoto(event.target.files[0]));

startCamera();
