// A minimal Socket.IO v5 / Engine.IO v4 client over a plain WebSocket, served by
// the project (no CDN, no npm): open "0{...}", namespace connect "40/ns,",
// events "42/ns,[name,data]", server ping "2" answered with pong "3".
// Reconnects after a drop. Usage: const s = miniSocket("/dashboard"); s.on("state", fn).
function miniSocket(namespace) {
  const handlers = {};
  const self = {
    connected: false,
    on(name, fn) { (handlers[name] = handlers[name] || []).push(fn); return self; },
  };
  const fire = (name, data) => (handlers[name] || []).forEach((fn) => fn(data));
  const prefix = "42" + namespace + ",";
  function open() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(proto + "//" + location.host + "/socket.io/?EIO=4&transport=websocket");
    ws.onmessage = (msg) => {
      const text = msg.data;
      if (text[0] === "0") ws.send("40" + namespace + ",");
      else if (text === "2") ws.send("3");
      else if (text.startsWith("40" + namespace)) { self.connected = true; fire("connect"); }
      else if (text.startsWith(prefix)) {
        const [name, data] = JSON.parse(text.slice(prefix.length));
        fire(name, data);
      }
    };
    ws.onclose = () => {
      if (self.connected) { self.connected = false; fire("disconnect"); }
      setTimeout(open, 1000);
    };
  }
  open();
  return self;
}
