export interface RegistryMirror {
  host: string;
  url: string;
}
