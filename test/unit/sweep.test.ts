// sweep's parts that need nothing running: the values to try and the setting they go to.
import { describe, expect, it } from 'vitest';
import { parseSweepValues, settingValue, SweepSettingError } from '../../src/tools/sweep.js';
import { shippedConfig } from '../support/snapshot.js';

describe('sweep values', () => {
  it('reads a list and a from:to:step range, rounded to the step', () => {
    expect(parseSweepValues('1.5, 2,3')).toEqual([1.5, 2, 3]);
    expect(parseSweepValues('1:3:0.5')).toEqual([1, 1.5, 2, 2.5, 3]);
    expect(parseSweepValues('0.1:0.4:0.1')).toEqual([0.1, 0.2, 0.3, 0.4]);
    expect(parseSweepValues('2:2:1')).toEqual([2]);
  });

  it('refuses what is not numbers, an empty step, a backwards range and too many values', () => {
    expect(() => parseSweepValues('1,x,')).toThrow(/not numbers: "x", ""/);
    expect(() => parseSweepValues('1:3:0')).toThrow(SweepSettingError);
    expect(() => parseSweepValues('3:1:1')).toThrow(/to >= from/);
    expect(() => parseSweepValues('0:1000:1')).toThrow(/1001 values, at most 101/);
  });
});

describe('sweep setting', () => {
  const { config } = shippedConfig();

  it('finds a numeric setting by its dotted path', () => {
    expect(settingValue(config, 'review.threshold')).toBe(2);
    expect(settingValue(config, 'signals.ip.shared_by_accounts.threshold')).toBe(4);
  });

  it('names what exists where a path goes wrong, and refuses a section or a text', () => {
    expect(() => settingValue(config, 'signals.ip.shared_by_account.weight')).toThrow(
      /signals\.ip has no "shared_by_account" \(it has .*shared_by_accounts/,
    );
    expect(() => settingValue(config, 'review')).toThrow(/review is a section, not a number/);
    expect(() => settingValue(config, 'review.action')).toThrow(/review\.action is a string, not a number/);
  });
});
