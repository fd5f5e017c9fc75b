// A socket.io-client 4.x driver for the drive server (run by test_server.py when
// node and socket.io-client are installed: NODE_PATH=... node socketio_client4.js URL JPEG_B64_FILE).
const { io } = require("socket.io-client");
const fs = require("fs");

const [url, imageFile, frames = "5"] = process.argv.slice(2);
const image = fs.readFileSync(imageFile, "utf8").trim();
const telemetry = { steering_angle: "0.0000", throttle: "0.0000", speed: "5.0000", image };
const socket = io(url, { reconnection: false, timeout: 5000 });
const replies = [];
const fail = (msg) => { console.error(msg); process.exit(1); };
setTimeout(() => fail(`timeout after ${replies.length} replies`), 10000);

socket.on("connect_error", (err) => fail(`connect_error: ${err.message}`));
socket.on("connect", () => socket.emit("telemetry", telemetry));
socket.on("steer", (data) => {
  if (typeof data.steering_angle !== "string" || typeof data.throttle !== "string") {
    fail(`non-string values: ${JSON.stringify(data)}`);
  }
  replies.push(data);
  if (replies.length < Number(frames)) socket.emit("telemetry", telemetry);
  else socket.emit("telemetry", null);
});
socket.on("manual", () => {
  console.log(JSON.stringify({ replies: replies.length, transport: socket.io.engine.transport.name }));
  socket.close();
  process.exit(0);
});
