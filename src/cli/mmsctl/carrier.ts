// mmsctl status and carrier: the modem's state and the carrier settings in force (DESIGN.md §10).
import type { CarrierProperties, MmsClient } from '../../api/dbus/client.js';
import { EXIT, type Output, type Values } from './args.js';

export async function status(c: MmsClient, io: Output, values: Values): Promise<number> {
  const s = await c.status();
  if (values.json) {
    io.out(
      JSON.stringify({
        modemState: s.ModemState,
        registration: s.Registration,
        operator: s.Operator,
        signal: s.SignalQuality,
        queueLength: s.QueueLength,
        version: s.Version,
        ...(s.Carrier ? { carrier: carrierJson(s.Carrier) } : {}),
      }),
    );
  } else {
    io.out(
      [
        `modem:        ${s.ModemState}`,
        `registration: ${s.Registration}`,
        `operator:     ${s.Operator || '-'}`,
        `signal:       ${s.SignalQuality < 0 ? 'unknown' : `${s.SignalQuality}/31`}`,
        `queue:        ${s.QueueLength}`,
        `version:      ${s.Version}`,
        ...(s.Carrier ? [`carrier:      ${carrierLine(s.Carrier)}`] : []),
      ].join('\n'),
    );
  }
  return EXIT.ok;
}

export async function carrier(c: MmsClient, io: Output, values: Values): Promise<number> {
  const p = await c.carrier();
  if (values.json) {
    io.out(JSON.stringify(carrierJson(p)));
    return EXIT.ok;
  }
  io.out(describeCarrier(p).join('\n'));
  return EXIT.ok;
}

/** One line for `mmsctl status`: where the settings came from, and a pointer when there are none. */
function carrierLine(p: CarrierProperties): string {
  if (p.Source === 'database') return `${p.Provider} (carrier database)`;
  if (p.Source === 'config') return 'from the config';
  if (p.Source === 'pending') return 'waiting for the SIM';
  return `${p.Source}: mmsctl carrier says what to set`;
}

/** The `carrier` of mmsd/status (docs/mqtt.md): the same fields in camelCase. */
function carrierJson(p: CarrierProperties): Record<string, unknown> {
  return {
    source: p.Source,
    provider: p.Provider,
    mccMnc: p.MccMnc,
    apn: p.Apn,
    mmsc: p.Mmsc,
    proxy: p.Proxy,
    maxMessageBytes: p.MaxMessageBytes,
    candidates: p.Candidates,
    reason: p.Reason,
    configKeys: p.ConfigKeys,
  };
}

/** `mmsctl carrier` as a person reads it; for `ambiguous`, the line that picks each candidate. */
export function describeCarrier(p: CarrierProperties): string[] {
  const lines = [
    `source:    ${p.Source}`,
    `provider:  ${p.Provider || '-'}`,
    `network:   ${p.MccMnc || '-'}`,
    `apn:       ${p.Apn === '' ? '- (the network chooses)' : p.Apn}`,
    `mmsc:      ${p.Mmsc || '-'}`,
    `proxy:     ${p.Proxy || '-'}`,
    `max size:  ${p.MaxMessageBytes} bytes`,
  ];
  if (p.ConfigKeys.length > 0) lines.push(`from the config over the database: ${p.ConfigKeys.join(', ')}`);
  lines.push(`why:       ${p.Reason}`);
  if (p.Source === 'ambiguous') {
    lines.push('', 'The carrier database has several providers for this SIM and mmsd guesses none.');
    lines.push('Put the line of yours inside the config file\'s outer braces (a comma between it and the key before), then restart mmsd:');
    for (const line of p.Candidates) lines.push(`  ${line}`);
  } else if (p.Source === 'not-found') {
    lines.push('', 'Set mms.mmsc (and pdp.apn, mms.proxy.host, mms.proxy.port as your operator says) in the');
    lines.push('config file, and report the network upstream to mobile-broadband-provider-info (docs/carriers.md).');
  } else if (p.Source === 'database' && p.Candidates.length > 1) {
    lines.push('', `Chosen from ${p.Candidates.length} providers of ${p.MccMnc}; another one is picked with its line:`);
    for (const line of p.Candidates) lines.push(`  ${line}`);
  }
  return lines;
}
