"""ament_python package definition for cooperative_fusion."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'cooperative_fusion'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(include=[PACKAGE, f'{PACKAGE}.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config', glob('config/*.yaml') + glob('config/*.xml')),
        (f'share/{PACKAGE}/config/vehicles', glob('config/vehicles/*.yaml')),
        (f'share/{PACKAGE}/config/scenarios', glob('config/scenarios/*.yaml')),
        # a scenario's own platoon config and vehicle params: config/scenarios/<name>/**/*.yaml
        *[(f'share/{PACKAGE}/{d.rstrip("/")}', glob(f'{d}*.yaml'))
          for d in sorted(glob('config/scenarios/*/**/', recursive=True))],
        (f'share/{PACKAGE}/config/faults', glob('config/faults/*.yaml')),
        (f'share/{PACKAGE}/scripts', glob('scripts/*.sh')),
    ],
    package_data={PACKAGE: ['py.typed']},
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='cooperative_fusion developers',
    maintainer_email='dev@cooperative-fusion.invalid',
    description='Cooperative perception for vehicle platoons: common occupancy grid and edge digital twin.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'cooperative-fusion = cooperative_fusion.cli:main',
            'vehicle_node = cooperative_fusion.nodes.vehicle_node:main',
            'fusion_node = cooperative_fusion.nodes.fusion_node:main',
            'fusion_combiner = cooperative_fusion.nodes.fusion_combiner:main',
            'twin_node = cooperative_fusion.nodes.twin_node:main',
            'fault_injector = cooperative_fusion.nodes.fault_injector:main',
            'advisory_follower = cooperative_fusion.nodes.advisory_follower:main',
        ],
    },
)
