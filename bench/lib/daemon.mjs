// The built daemon (dist/) for benchmarks that run it in process: start it from config text on
// free ports, with pino at error level.
const dist = (p) => new URL(`../../dist/src/${p}`, import.meta.url).href;
const { Daemon } = await import(dist('daemon/daemon.js'));
const { settingsFromConfig } = await import(dist('config/settings.js'));
const { parseConfigText } = await import(dist('config/asterisk-conf.js'));
const { pino } = await import('pino');

/** A daemon on `configText`, its FastAGI and HTTP listeners on free ports. */
export async function startBenchDaemon(configText, name = 'bench.conf') {
  const settings = settingsFromConfig(parseConfigText(configText, name));
  settings.agi.port = 0;
  settings.http.port = 0;
  return Daemon.start(settings, pino({ level: 'error' }));
}
