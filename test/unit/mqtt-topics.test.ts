// Topic building and parsing of the MQTT front door (DESIGN.md §5).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isPublishableTopic, isUsableId, Topics, topicMatches } from '../../src/api/mqtt/topics.js';

describe('Topics', () => {
  it('derives the §5 topics from the base topic', () => {
    const t = new Topics('mmsd');
    expect(t.availability).toBe('mmsd/availability');
    expect(t.status).toBe('mmsd/status');
    expect(t.error).toBe('mmsd/error');
    expect(t.cancel).toBe('mmsd/cancel');
    expect(t.sendSubscription).toBe('mmsd/send');
    expect(t.message('m-1')).toBe('mmsd/message/m-1');
  });

  it('subscribes to a shared subscription but matches the plain topic', () => {
    const t = new Topics('gw1', '$share/fleet/mmsd/send');
    expect(t.sendSubscription).toBe('$share/fleet/mmsd/send');
    expect(t.sendFilter).toBe('mmsd/send');
    expect(t.classify('mmsd/send')).toBe('send');
    expect(t.classify('gw1/send')).toBeUndefined();
    expect(t.classify('gw1/cancel')).toBe('cancel');
  });

  it('refuses unusable base and send topics', () => {
    expect(() => new Topics('mmsd/+')).toThrow(/baseTopic/);
    expect(() => new Topics('a/#')).toThrow(/baseTopic/);
    expect(() => new Topics('')).toThrow(/baseTopic/);
    expect(() => new Topics('$SYS')).toThrow(/baseTopic/);
    expect(() => new Topics('mmsd', '$share/g')).toThrow(/sendTopic/);
    expect(() => new Topics('mmsd', 'a/#/b')).toThrow(/sendTopic/);
    expect(() => new Topics('mmsd', 'mmsd/#')).toThrow(/must not cover/);
  });

  it('never builds a message topic with a wildcard, a separator or a control character', () => {
    const t = new Topics('mmsd');
    for (const id of ['a/b', 'a+b', '#', '', 'x\u0000', 'x\n', 'x'.repeat(129), '\ud800']) {
      expect(t.message(id)).toBeUndefined();
      expect(isUsableId(id)).toBe(false);
    }
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (id) => {
        const topic = t.message(id);
        if (topic === undefined) return;
        expect(topic.includes('+') || topic.includes('#')).toBe(false);
        expect(topic.split('/')).toHaveLength(3);
        expect(isPublishableTopic(topic)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('matches filters the MQTT way', () => {
    expect(topicMatches('a/+/c', 'a/b/c')).toBe(true);
    expect(topicMatches('a/+', 'a/b/c')).toBe(false);
    expect(topicMatches('a/#', 'a')).toBe(true);
    expect(topicMatches('a/#', 'a/b/c')).toBe(true);
    expect(topicMatches('#', '$SYS/x')).toBe(false);
    expect(topicMatches('a/b', 'a/b')).toBe(true);
    expect(topicMatches('a/b', 'a/b/c')).toBe(false);
  });
});
