// The decision module bench/supervisor.js loads into the supervisor's thread: allow everything,
// so the measured cost is the mechanism (notification, path read, emulated open, static check,
// fd injection), plus one cheap decide() call.
export function createDecider() {
  return () => ({ allow: true });
}
