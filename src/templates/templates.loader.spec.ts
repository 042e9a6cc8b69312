import { decideTemplateLoad } from './templates.loader.js';

describe('decideTemplateLoad (what a valid file does to a stored template)', () => {
  const live = { version: '1.2.0', contentHash: 'a', deleted: false, deletedBy: null };

  it('replaces a live template with a newer version, or the same version with other content', () => {
    expect(decideTemplateLoad(live, { version: '1.3.0', contentHash: 'a' })).toEqual({ action: 'replace', outcome: 'updated' });
    expect(decideTemplateLoad(live, { version: '1.2.0', contentHash: 'b' })).toEqual({ action: 'replace', outcome: 'updated' });
  });

  it('leaves it alone when nothing changed', () => {
    expect(decideTemplateLoad(live, { version: '1.2.0', contentHash: 'a' })).toEqual({ action: 'keep', outcome: 'unchanged' });
  });

  it('keeps a stored version newer than the file (an admin changed it), and says so', () => {
    const decision = decideTemplateLoad(live, { version: '1.1.9', contentHash: 'b' });
    expect(decision).toMatchObject({ action: 'keep', outcome: 'skipped' });
    expect(decision.action === 'keep' && decision.outcome === 'skipped' && decision.message).toContain(
      "the stored version 1.2.0 is newer than the file's 1.1.9",
    );
    expect(decideTemplateLoad(live, { version: '1.2.0-rc.1', contentHash: 'a' })).toMatchObject({ outcome: 'skipped' });
  });

  it("keeps an admin's deletion unless the file is newer, and restores a pruned template", () => {
    const deletedByAdmin = { ...live, deleted: true, deletedBy: 'admin' as const };
    expect(decideTemplateLoad(deletedByAdmin, { version: '1.2.0', contentHash: 'b' })).toMatchObject({
      action: 'keep',
      outcome: 'skipped',
    });
    expect(decideTemplateLoad(deletedByAdmin, { version: '1.2.1', contentHash: 'b' })).toEqual({ action: 'replace', outcome: 'loaded' });
    const pruned = { ...live, deleted: true, deletedBy: 'prune' as const };
    expect(decideTemplateLoad(pruned, { version: '1.0.0', contentHash: 'a' })).toEqual({ action: 'replace', outcome: 'loaded' });
  });
});
