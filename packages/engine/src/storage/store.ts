/**
 * The storage facade: tables by name (the catalog), and the operations the transaction layer
 * applies to them. Every method is synchronous; every change goes through the caller's
 * PageModifyContext (one per transaction), so that the WAL layer logs it.
 *
 * The catalog is itself a B+tree relation (CATALOG_RELNODE) mapping table name (UTF-8) to
 * relNode (u32 LE); the next relNode to hand out lives in the catalog's meta page. Nothing here
 * survives only in memory: a Store built over the same pages sees the same tables and entries.
 * The one in-memory state, vacuum's per-relation cursor, is a hint that may be lost.
 */
import { CATALOG_RELNODE, DEFAULT_TABLE, FIRST_USER_RELNODE, MAX_TABLE_NAME_BYTES } from '../constants.js';
import { ErrorCode, WalshipError, assert } from '../errors.js';
import type { Lsn } from '../lsn.js';
import type { Entry, RangeResult } from '../types.js';
import type { PageModifyContext } from './contracts.js';
import type { BufferPool } from './buffer-pool.js';
import { BTree, type RelationInfo, type ScanOptions } from './btree.js';
import { BTreeVacuum, type VacuumResult } from './btree-vacuum.js';
import { pendingRevisionOffsets } from './btree-page.js';
import { beginPageChange, metaNextRelNode, metaSetNextRelNode } from './relation-meta.js';
import { MAX_RELNODE } from './smgr.js';

export interface TableInfo {
  name: string;
  relNode: number;
}

/** Printable characters only: no control characters (C0, DEL, C1). */
const TABLE_NAME_PATTERN = /^[^\u0000-\u001f\u007f-\u009f]+$/u;

/** Names kept by the relNode cache before it starts over (a cluster has a handful of tables). */
const RELNODE_CACHE_MAX = 1024;

export class Store {
  readonly pool: BufferPool;
  private readonly tree: BTree;
  private readonly vacuum: BTreeVacuum;
  /**
   * name → relNode as the catalog said at pool.catalogVersion === relNodeCacheVersion
   * (RelationIdCache's role): every transaction names its table, and the catalog B-tree's descent
   * was most of the time its lookup took. Only tables found are kept.
   */
  private readonly relNodeCache = new Map<string, number>();
  private relNodeCacheVersion = -1;

  constructor(pool: BufferPool) {
    this.pool = pool;
    this.tree = new BTree(pool);
    this.vacuum = new BTreeVacuum(this.tree);
  }

  /** Whether the catalog exists (bootstrap ran). */
  isBootstrapped(): boolean {
    return this.pool.nblocks(CATALOG_RELNODE) > 0;
  }

  /** Creates the catalog and the default table: once, when the data directory is initialized. */
  bootstrap(ctx: PageModifyContext): void {
    if (this.isBootstrapped()) {
      throw new WalshipError(ErrorCode.internal, 'the catalog already exists', {
        hint: 'bootstrap runs once, when a data directory is initialized.',
      });
    }
    this.tree.createRelation(CATALOG_RELNODE, ctx, FIRST_USER_RELNODE);
    this.createTable(DEFAULT_TABLE, ctx);
  }

  lookupTable(name: string): number | null {
    if (this.relNodeCacheVersion === this.pool.catalogVersion) {
      const cached = this.relNodeCache.get(name);
      if (cached !== undefined) return cached;
    } else {
      this.relNodeCache.clear();
      this.relNodeCacheVersion = this.pool.catalogVersion;
    }
    if (!this.isBootstrapped()) return null;
    const entry = this.tree.get(CATALOG_RELNODE, Buffer.from(name, 'utf8'));
    if (entry === null) return null;
    const relNode = decodeRelNode(entry.value);
    if (this.relNodeCache.size >= RELNODE_CACHE_MAX) this.relNodeCache.clear();
    this.relNodeCache.set(name, relNode);
    return relNode;
  }

  listTables(): TableInfo[] {
    if (!this.isBootstrapped()) return [];
    return this.tree
      .scan(CATALOG_RELNODE, {})
      .entries.map((entry) => ({ name: entry.key.toString('utf8'), relNode: decodeRelNode(entry.value) }));
  }

  /** Creates a table; returns its relNode. */
  createTable(name: string, ctx: PageModifyContext): number {
    const key = checkTableName(name);
    if (this.tree.get(CATALOG_RELNODE, key) !== null) {
      throw new WalshipError(ErrorCode.invalidParameter, `table "${name}" already exists`, {
        hint: 'Choose another name, or drop the existing table first.',
      });
    }
    const meta = this.tree.readMeta(CATALOG_RELNODE);
    let relNode: number;
    try {
      relNode = metaNextRelNode(meta.page);
      assert(relNode >= FIRST_USER_RELNODE, 'catalog next relNode initialized');
      if (relNode > MAX_RELNODE) {
        throw new WalshipError(ErrorCode.internal, 'out of relation numbers', {
          detail: `Relation numbers up to ${MAX_RELNODE} are in use.`,
        });
      }
      beginPageChange(this.pool, ctx, meta);
      metaSetNextRelNode(meta.page, relNode + 1);
    } finally {
      this.pool.release(meta);
    }
    const value = Buffer.alloc(4);
    value.writeUInt32LE(relNode, 0);
    this.tree.put(CATALOG_RELNODE, key, value, ctx);
    // Pages here are what a transaction that created this relation and then failed left: its
    // abort put back the catalog, which never named the relation, but not the new pages (the
    // pending delete of an aborted relation's storage, in PostgreSQL). No WAL refers to them.
    if (this.pool.nblocks(relNode) > 0) {
      this.pool.dropRelation(relNode);
      this.pool.smgr.unlink(relNode);
    }
    this.tree.createRelation(relNode, ctx);
    return relNode;
  }

  /**
   * Removes a table from the catalog; returns its relNode, or null when there was none. Its
   * pages stay: once the transaction is durable the caller drops them (pool.dropRelation) and
   * removes the file (smgr.unlink), on the primary and in redo alike.
   */
  dropTable(name: string, ctx: PageModifyContext): number | null {
    const key = checkTableName(name);
    const relNode = this.lookupTable(name);
    if (relNode === null) return null;
    this.tree.delete(CATALOG_RELNODE, key, ctx);
    this.vacuum.forget(relNode);
    return relNode;
  }

  get(relNode: number, key: Buffer): Entry | null {
    return this.tree.get(relNode, key);
  }

  /** The revision of the entry for `key`, or null; cheaper than get (no value copy). */
  getRevision(relNode: number, key: Buffer): Lsn | null {
    return this.tree.getRevision(relNode, key);
  }

  /** Inserts or replaces; the revision reads PENDING_REVISION until the WAL layer stamps it. */
  put(relNode: number, key: Buffer, value: Buffer, ctx: PageModifyContext): void {
    this.tree.put(relNode, key, value, ctx);
  }

  delete(relNode: number, key: Buffer, ctx: PageModifyContext): boolean {
    return this.tree.delete(relNode, key, ctx);
  }

  /** Deletes keys in [start, end), at most `limit` (> 0) when given; returns how many. */
  deleteRange(relNode: number, start: Buffer, end: Buffer, ctx: PageModifyContext, limit?: number): number {
    return this.tree.deleteRange(relNode, start, end, ctx, limit);
  }

  scan(relNode: number, options: ScanOptions): RangeResult {
    return this.tree.scan(relNode, options);
  }

  /** See btree-page.ts: revision fields still PENDING_REVISION on a leaf page; [] otherwise. */
  pendingRevisionOffsets(page: Buffer): number[] {
    return pendingRevisionOffsets(page);
  }

  /** One bounded step of autovacuum on a relation: about `maxPages` leaves. */
  vacuumStep(relNode: number, ctx: PageModifyContext, maxPages: number): VacuumResult {
    return this.vacuum.step(relNode, ctx, maxPages);
  }

  /** Size and shape of a relation (for monitoring and tests). */
  relationInfo(relNode: number): RelationInfo {
    return this.tree.info(relNode);
  }
}

function checkTableName(name: string): Buffer {
  const key = Buffer.from(name, 'utf8');
  if (key.length === 0 || key.length > MAX_TABLE_NAME_BYTES || !TABLE_NAME_PATTERN.test(name)) {
    throw new WalshipError(ErrorCode.invalidParameter, `invalid table name "${name}"`, {
      detail: `A table name is 1 to ${MAX_TABLE_NAME_BYTES} bytes of UTF-8 without control characters.`,
    });
  }
  return key;
}

function decodeRelNode(value: Buffer): number {
  assert(value.length === 4, 'catalog value is a u32 relNode');
  return value.readUInt32LE(0);
}

