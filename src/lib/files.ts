/**
 * Files netkit writes: always atomically (write a temporary file beside the
 * target, fsync, rename), secrets with mode 0600 in a 0700 directory, so a
 * reader never sees half a file and nobody else can read a key.
 */
import {closeSync, fchmodSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, writeSync} from 'node:fs'
import {dirname, join, resolve, sep} from 'node:path'

import {UsageError} from './errors.js'

export function configDir(): string {
  return process.env.NETKIT_CONFIG_DIR ?? '/etc/netkit'
}

export function writeFileAtomic(path: string, content: string, mode = 0o644, dirMode = 0o755): void {
  mkdirSync(dirname(path), {recursive: true, mode: dirMode})
  const tmp = join(dirname(path), `.${process.pid}.${Date.now()}.tmp`)
  const fd = openSync(tmp, 'w', mode)
  try {
    // Exactly this mode, whatever the umask (a 0644 file another user's reader needs, a 0600 secret).
    fchmodSync(fd, mode)
    writeSync(fd, content)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  try {
    renameSync(tmp, path)
  } catch (error) {
    rmSync(tmp, {force: true})
    throw error
  }
}

/** A secret: mode 0600, in a directory only root can enter. */
export function writeSecretFile(path: string, content: string): void {
  writeFileAtomic(path, content, 0o600, 0o700)
}

/**
 * Reads a secret the user gave as a file: it must exist, not be empty, and be
 * readable by its owner only. The trailing newline is not part of the secret.
 */
export function readSecretFile(path: string, what: string): string {
  let st
  try {
    st = statSync(path)
  } catch {
    throw new UsageError(`${what} ${path} does not exist`, 'give the path of an existing file')
  }
  if (!st.isFile()) throw new UsageError(`${what} ${path} is not a regular file`, 'give the path of a file')
  if ((st.mode & 0o077) !== 0) {
    throw new UsageError(`${what} ${path} can be read by others (mode ${(st.mode & 0o777).toString(8)})`, `run "chmod 600 ${path}"`)
  }
  const value = readFileSync(path, 'utf8').replace(/\r?\n$/, '')
  if (value.length === 0) throw new UsageError(`${what} ${path} is empty`, 'put the secret in the file')
  return value
}

export function fileMode(path: string): number | undefined {
  try {
    return statSync(path).mode & 0o777
  } catch {
    return undefined
  }
}

/**
 * Removes `dir` if it is empty, then each parent left empty, up to (not
 * including) `stop`: netkit leaves no empty directory behind. A directory
 * outside `stop`, or one that is not empty, is kept.
 */
export function pruneEmptyDirs(dir: string, stop: string): void {
  const top = resolve(stop)
  for (let d = resolve(dir); d.startsWith(top + sep); d = dirname(d)) {
    try {
      rmdirSync(d)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return
    }
  }
}

/** Removes `dir` when nothing but empty directories is left in it, then each parent left empty, up to `stop`. */
export function pruneTree(dir: string, stop: string): void {
  const onlyDirs = (d: string): boolean => {
    try {
      return readdirSync(d, {withFileTypes: true}).every((e) => e.isDirectory() && onlyDirs(join(d, e.name)))
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'ENOENT'
    }
  }
  if (!onlyDirs(dir)) return
  rmSync(dir, {recursive: true, force: true})
  pruneEmptyDirs(dirname(dir), stop)
}

/** Removes a file (if there), and the directories it leaves empty up to `stop`. */
export function removeFile(path: string, stop: string): void {
  rmSync(path, {force: true})
  pruneEmptyDirs(dirname(path), stop)
}
