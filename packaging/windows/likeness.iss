; Inno Setup script of the Windows installer (Inno Setup 6). Not built on the Linux build machines:
;   python packaging\build.py                 (on Windows: makes packaging\dist\likeness\ and the icons)
;   iscc /DVersion=0.1.0 packaging\windows\likeness.iss    -> packaging\dist\Likeness-0.1.0-setup.exe
; Per-user install (no administrator rights), a Start-menu entry, and "Open with Likeness" for
; images. The user's data and models live in %LOCALAPPDATA%\Likeness and stay on uninstall.
; Unsigned installers and bootloaders trip some antivirus programs: sign both (signtool) before
; publishing; SignTool= below is where Inno Setup does it.

#ifndef Version
  #define Version "0.1.0"
#endif
#define Bundle "..\dist\likeness"

[Setup]
AppId={{6B1E7C52-4B0F-4A52-9F6C-3E2D1C9A7F10}
AppName=Likeness
AppVersion={#Version}
AppPublisher=Likeness developers
DefaultDirName={localappdata}\Programs\Likeness
DefaultGroupName=Likeness
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\dist
OutputBaseFilename=Likeness-{#Version}-setup
SetupIconFile=..\build\icons\likeness.ico
UninstallDisplayIcon={app}\Likeness.exe
LicenseFile=..\..\LICENSE
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesAssociations=yes

[Files]
Source: "{#Bundle}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{userprograms}\Likeness"; Filename: "{app}\Likeness.exe"
Name: "{userdesktop}\Likeness"; Filename: "{app}\Likeness.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop shortcut"; Flags: unchecked

[Registry]
; "Open with" for images: an application entry and the image types it opens (per user, HKCU).
Root: HKCU; Subkey: "Software\Classes\Applications\Likeness.exe"; ValueType: string; ValueName: "FriendlyAppName"; ValueData: "Likeness"; Flags: uninsdeletekey
Root: HKCU; Subkey: "Software\Classes\Applications\Likeness.exe\shell\open\command"; ValueType: string; ValueData: """{app}\Likeness.exe"" ""%1"""
Root: HKCU; Subkey: "Software\Classes\Applications\Likeness.exe\SupportedTypes"; ValueType: string; ValueName: ".jpg"; ValueData: ""
Root: HKCU; Subkey: "Software\Classes\Applications\Likeness.exe\SupportedTypes"; ValueType: string; ValueName: ".jpeg"; ValueData: ""
Root: HKCU; Subkey: "Software\Classes\Applications\Likeness.exe\SupportedTypes"; ValueType: string; ValueName: ".png"; ValueData: ""
Root: HKCU; Subkey: "Software\Classes\Applications\Likeness.exe\SupportedTypes"; ValueType: string; ValueName: ".tif"; ValueData: ""
Root: HKCU; Subkey: "Software\Classes\Applications\Likeness.exe\SupportedTypes"; ValueType: string; ValueName: ".tiff"; ValueData: ""
Root: HKCU; Subkey: "Software\Classes\Applications\Likeness.exe\SupportedTypes"; ValueType: string; ValueName: ".webp"; ValueData: ""
Root: HKCU; Subkey: "Software\Classes\Applications\Likeness.exe\SupportedTypes"; ValueType: string; ValueName: ".bmp"; ValueData: ""
Root: HKCU; Subkey: "Software\Classes\.jpg\OpenWithList\Likeness.exe"; ValueType: string; ValueData: ""; Flags: uninsdeletekey
Root: HKCU; Subkey: "Software\Classes\.jpeg\OpenWithList\Likeness.exe"; ValueType: string; ValueData: ""; Flags: uninsdeletekey
Root: HKCU; Subkey: "Software\Classes\.png\OpenWithList\Likeness.exe"; ValueType: string; ValueData: ""; Flags: uninsdeletekey
Root: HKCU; Subkey: "Software\Classes\.tif\OpenWithList\Likeness.exe"; ValueType: string; ValueData: ""; Flags: uninsdeletekey
Root: HKCU; Subkey: "Software\Classes\.tiff\OpenWithList\Likeness.exe"; ValueType: string; ValueData: ""; Flags: uninsdeletekey
Root: HKCU; Subkey: "Software\Classes\.webp\OpenWithList\Likeness.exe"; ValueType: string; ValueData: ""; Flags: uninsdeletekey
Root: HKCU; Subkey: "Software\Classes\.bmp\OpenWithList\Likeness.exe"; ValueType: string; ValueData: ""; Flags: uninsdeletekey

[Run]
Filename: "{app}\Likeness.exe"; Description: "Start Likeness"; Flags: nowait postinstall skipifsilent
