import { KuraPayload, metric } from './kura-payload';
import { decodeKuraPayload, encodeKuraPayload } from './kura-payload.codec';
import {
  BirthCertificate,
  MAX_APPLICATION_IDS,
  MAX_BIRTH_STRING_LENGTH,
  birthMetrics,
  readBirthCertificate,
} from './birth';

function createBirth(overrides: Partial<BirthCertificate> = {}): BirthCertificate {
  return {
    displayName: 'Line 3 gateway',
    modelId: 'EG-100',
    serialNumber: 'SN-0042',
    firmwareVersion: '1.4.2',
    connectionIp: '192.0.2.10',
    applicationIds: ['CMD-V1', 'VPNCLIENT-V2'],
    publicKey: Buffer.alloc(32, 1).toString('base64'),
    uptime: 123456,
    ...overrides,
  };
}

describe('BIRTH certificate', () => {
  it('should write Kura profile metrics, application ids as a comma list and uptime as a string', () => {
    expect(birthMetrics(createBirth())).toEqual([
      metric.string('display_name', 'Line 3 gateway'),
      metric.string('model_id', 'EG-100'),
      metric.string('serial_number', 'SN-0042'),
      metric.string('firmware_version', '1.4.2'),
      metric.string('connection_ip', '192.0.2.10'),
      metric.string('vpn.public_key', Buffer.alloc(32, 1).toString('base64')),
      metric.string('application_ids', 'CMD-V1,VPNCLIENT-V2'),
      metric.string('uptime', '123456'),
    ]);
  });

  it('should leave out absent fields', () => {
    expect(birthMetrics({ applicationIds: [] })).toEqual([metric.string('application_ids', '')]);
  });

  it('should roundtrip through the codec', () => {
    const birth = createBirth();
    expect(
      readBirthCertificate(decodeKuraPayload(encodeKuraPayload({ metrics: birthMetrics(birth) }))),
    ).toEqual(birth);
  });

  it('should read a Kura gateway BIRTH, ignoring metrics it does not know', () => {
    const payload: KuraPayload = {
      metrics: [
        metric.string('display_name', 'ReliaGATE'),
        metric.string('os', 'Linux'),
        metric.string('application_ids', ' CLOUD-V1, DEPLOY-V2 ,,VPNCLIENT-V2,'),
        metric.string('uptime', '98765'),
        metric.int32('available_processors', 4),
      ],
    };
    expect(readBirthCertificate(payload)).toEqual({
      displayName: 'ReliaGATE',
      applicationIds: ['CLOUD-V1', 'DEPLOY-V2', 'VPNCLIENT-V2'],
      uptime: 98765,
    });
  });

  it('should leave out known metrics of the wrong type', () => {
    const payload: KuraPayload = {
      metrics: [
        metric.int32('display_name', 1),
        metric.bool('model_id', true),
        metric.int64('application_ids', 5),
        metric.bool('uptime', true),
      ],
    };
    expect(readBirthCertificate(payload)).toEqual({ applicationIds: [] });
  });

  it.each<[string, KuraPayload, number | undefined]>([
    ['an INT64 uptime', { metrics: [metric.int64('uptime', 5000)] }, 5000],
    ['a DOUBLE uptime', { metrics: [metric.double('uptime', 1.5)] }, 1.5],
    ['a negative uptime', { metrics: [metric.int64('uptime', -1)] }, undefined],
    ['a non-numeric uptime string', { metrics: [metric.string('uptime', '3 days')] }, undefined],
    ['an empty uptime string', { metrics: [metric.string('uptime', '')] }, undefined],
    ['an infinite uptime', { metrics: [metric.double('uptime', Infinity)] }, undefined],
  ])('should read %s tolerantly', (_title, payload, uptime) => {
    expect(readBirthCertificate(payload).uptime).toBe(uptime);
  });

  it('should cut strings to 255 characters', () => {
    const payload = { metrics: [metric.string('serial_number', 's'.repeat(1000))] };
    expect(readBirthCertificate(payload).serialNumber).toHaveLength(MAX_BIRTH_STRING_LENGTH);
  });

  it('should split application ids before cutting so a long list keeps VPNCLIENT-V2', () => {
    const ids = [...Array.from({ length: 40 }, (_, i) => `APPLICATION-NUMBER-${i}-V1`), 'VPNCLIENT-V2'];
    const birth = readBirthCertificate({ metrics: [metric.string('application_ids', ids.join(','))] });
    expect(birth.applicationIds).toEqual(ids);
  });

  it('should cap the number of application ids', () => {
    const ids = Array.from({ length: 100 }, (_, i) => `APP-${i}`);
    const birth = readBirthCertificate({ metrics: [metric.string('application_ids', ids.join(','))] });
    expect(birth.applicationIds).toHaveLength(MAX_APPLICATION_IDS);
  });
});
